package httpd

import (
	"encoding/json"
	"net/http"

	"github.com/disperse/disperse/cluster"
	"github.com/gin-gonic/gin"
)

// healthz answers 200 while the process runs.
func (s *Server) healthz(c *gin.Context) {
	_ = writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 once Config.Ready says the node is ready, 503 before;
// both with Ready's reason.
func (s *Server) readyz(c *gin.Context) {
	ok, reason := s.cfg.Ready()
	if !ok {
		if reason == "" {
			reason = "the node is not ready"
		}
		body, _ := json.Marshal(struct {
			errorBody
			Reason string `json:"reason"`
		}{errorBody{"not ready: " + reason, CodeUnavailable}, reason}) // cannot fail on strings
		c.Header("Retry-After", "1")
		s.writeErrorBody(c, http.StatusServiceUnavailable, body)
		return
	}
	_ = writeJSON(c, http.StatusOK, map[string]string{"status": "ready", "reason": reason})
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
