package httpd

import (
	"net/http"

	"github.com/disperse/disperse/cluster"
	"github.com/gin-gonic/gin"
)

// healthz answers 200 while the process runs.
func (s *Server) healthz(c *gin.Context) {
	_ = writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 once the node has recovered, 503 before.
func (s *Server) readyz(c *gin.Context) {
	if !s.cfg.Ready() {
		s.writeErrorBody(c, http.StatusServiceUnavailable, errorJSON("the node is still recovering", CodeUnavailable))
		return
	}
	_ = writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
}

// members serves GET /cluster/members.
func (s *Server) members(c *gin.Context) error {
	ms := []cluster.Member{}
	if s.cfg.Members != nil {
		if got := s.cfg.Members.Members(); got != nil {
			ms = got
		}
	}
	return writeJSON(c, http.StatusOK, ms)
}
