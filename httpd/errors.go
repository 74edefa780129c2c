package httpd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
	"github.com/gin-gonic/gin"
)

// Error codes of the JSON error body.
const (
	CodeBadRequest          = "bad_request"
	CodeUnauthorized        = "unauthorized"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodePrecondition        = "precondition_failed"
	CodeTooLarge            = "too_large"
	CodeRangeNotSatisfiable = "range_not_satisfiable"
	CodeRateLimited         = "rate_limited"
	CodeInternal            = "internal"
	CodeUnavailable         = "unavailable"
	CodeDiskFull            = "disk_full"
	CodeMemoryFull          = "memory_full"
)

// Error is a request error: it carries the status and code it is answered
// with. Handlers return it (wrapped or not); any other error is a
// server-side failure and is mapped by statusOf.
type Error struct {
	Status int    // HTTP status
	Code   string // snake_case code
	Msg    string // human sentence for the client
	Err    error  // cause, optional; never shown to the client
	// RetryAfter, when set, is sent as Retry-After (whole seconds, rounded
	// up): when the client may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Msg: fmt.Sprintf(format, args...)}
}

// errIfMatch answers a GET or HEAD whose If-Match names another version.
var errIfMatch = &Error{Status: http.StatusPreconditionFailed, Code: CodePrecondition,
	Msg: "the current version does not meet If-Match"}

// errKeyNotFound answers a read of an absent or expired key.
var errKeyNotFound = &Error{Status: http.StatusNotFound, Code: CodeNotFound, Msg: "key not found"}

// statusOf is the one place that maps an error to its answer. Request errors
// (*Error) answer as they say; a full disk is 507; everything else a handler
// returns comes from storage or the cluster (wal.ErrIO, engine.ErrClosed,
// a cancelled context, ...) and is 503. server reports whether the failure
// is the server's, to be logged.
func statusOf(err error) (status int, code, msg string, server bool) {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Status, e.Code, e.Msg, e.Status >= 500
	case errors.Is(err, cluster.ErrPrecondition):
		return http.StatusPreconditionFailed, CodePrecondition, "the key's current version does not meet If-Match or If-None-Match; nothing changed", false
	case errors.Is(err, wal.ErrDiskFull):
		return http.StatusInsufficientStorage, CodeDiskFull, "the node's disk is full", true
	case errors.Is(err, engine.ErrMemoryFull):
		return http.StatusInsufficientStorage, CodeMemoryFull, "the node is at its memory bound (--max-memory) and its eviction policy found nothing to evict", false
	case errors.Is(err, engine.ErrClosed), errors.Is(err, wal.ErrClosed):
		return http.StatusServiceUnavailable, CodeUnavailable, "the node is shutting down", true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, CodeUnavailable, "the request was cancelled or timed out", true
	}
	return http.StatusServiceUnavailable, CodeUnavailable, "the node's storage is unavailable", true
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// errorJSON encodes an error body.
func errorJSON(msg, code string) []byte {
	b, _ := json.Marshal(errorBody{Error: msg, Code: code}) // cannot fail on two strings
	return b
}

// writeError answers c with err mapped by statusOf, and logs server-side
// failures with their full cause.
func (s *Server) writeError(c *gin.Context, err error) {
	if err == errKeyNotFound { // the common miss, answered without errors.As
		s.writeErrorBody(c, http.StatusNotFound, s.notFoundBody)
		return
	}
	status, code, msg, server := statusOf(err)
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		c.Writer.Header()["Retry-After"] = []string{strconv.Itoa(retryAfterSeconds(e.RetryAfter))}
	}
	if server {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.Int("status", status), slog.Any("err", err))
	}
	s.writeErrorBody(c, status, errorJSON(msg, code))
}

// writeErrorBody answers c with status and a JSON error body (no body to a
// HEAD request) and stops the handler chain.
func (s *Server) writeErrorBody(c *gin.Context, status int, body []byte) {
	h := c.Writer.Header()
	h["Content-Type"] = []string{contentTypeJSON}
	h.Del("Etag")
	h.Del("X-Expires-At")
	c.Writer.WriteHeader(status)
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(body)
	}
	c.Abort()
}
