package httpd

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// checkPeer lets a node-to-node request through only when Config.VerifyPeer
// accepts its signature; otherwise it answers 401 and reports false.
func (s *Server) checkPeer(c *gin.Context) bool {
	if s.cfg.VerifyPeer == nil {
		return true
	}
	if err := s.cfg.VerifyPeer(c.Request); err != nil {
		s.metrics.rejectedAuth.Inc()
		s.writeErrorBody(c, http.StatusUnauthorized,
			errorJSON("node-to-node requests must be signed with the cluster key", CodeUnauthorized))
		return false
	}
	return true
}
