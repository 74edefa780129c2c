package httpd

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
)

// observe is the one middleware: it counts and times every request under
// its route template, logs it at Debug level, and runs the handlers under
// serve's panic recovery.
func (s *Server) observe(c *gin.Context) {
	start := time.Since(s.epoch) // monotonic only: one clock read, not two
	s.serve(c)
	took := time.Since(s.epoch) - start
	status := c.Writer.Status()
	rm := s.metrics.lookup(c)
	rm.counter(status).Inc()
	rm.observe(took.Seconds())
	if s.log.Enabled(c.Request.Context(), slog.LevelDebug) {
		s.log.LogAttrs(c.Request.Context(), slog.LevelDebug, "request",
			slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.String("route", rm.route), slog.Int("status", status),
			slog.Int("bytes", c.Writer.Size()), slog.Duration("took", took))
	}
}

// serve runs the rest of the handler chain and turns a panic in it into a
// 500 JSON answer (when nothing was written yet) and a logged stack.
// http.ErrAbortHandler is passed on: it is how a handler asks net/http to
// drop the connection.
func (s *Server) serve(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v)
		}
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "handler panicked",
			slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		s.writeErrorBody(c, http.StatusInternalServerError, errorJSON("internal server error", CodeInternal))
	}()
	c.Next()
}
