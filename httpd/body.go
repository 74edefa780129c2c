package httpd

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Defaults of the body limits.
const (
	// DefaultBodyIdleTimeout is how long a request body may move no byte
	// before the request is cut.
	DefaultBodyIdleTimeout = 30 * time.Second
	// DefaultMaxBodyMemory bounds the request bodies the node buffers at
	// once, over every connection.
	DefaultMaxBodyMemory = 256 << 20
	// firstBodyChunk is the most a body buffer starts with before any byte
	// of it has arrived, whatever Content-Length says.
	firstBodyChunk = 16 << 10
)

// readDeadliner is the part of net/http's ResponseWriter that sets the
// connection's read deadline (what http.ResponseController calls).
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// deadlinerOf finds the read deadline setter under w's wrappers (gin's
// writer, metrics), as http.ResponseController does, without allocating.
func deadlinerOf(w http.ResponseWriter) readDeadliner {
	for range 8 {
		if d, ok := w.(readDeadliner); ok {
			return d
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// watchBody puts c's request body under the idle timeout: every Read
// moves the connection's read deadline to now plus the timeout, so a body
// is cut when no byte arrives for that long, however slowly but steadily it
// comes. Requests without a body are left alone.
func (s *Server) watchBody(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	d := deadlinerOf(c.Writer)
	if d == nil { // not a real connection (a test's recorder)
		return
	}
	// The handlers get a copy of the request with the watched body: the
	// original must keep net/http's own body type, which it inspects after
	// the handler to decide whether to read the rest or close.
	w := &watchedRequest{req: *r}
	w.body = idleBody{body: r.Body, conn: d, idle: s.cfg.BodyIdleTimeout, s: s}
	w.req.Body = &w.body
	c.Request = &w.req
}

// watchedRequest is a request and its watched body in one allocation.
type watchedRequest struct {
	req  http.Request
	body idleBody
}

// idleBody is a request body read under the idle timeout.
type idleBody struct {
	body io.ReadCloser
	conn readDeadliner
	idle time.Duration
	s    *Server
}

// errBodyIdle is a body that moved no byte for the idle timeout.
type errBodyIdle struct{ idle time.Duration }

func (e *errBodyIdle) Error() string {
	return "no byte of the request body arrived for " + e.idle.String()
}

func (e *errBodyIdle) Unwrap() error { return os.ErrDeadlineExceeded }

func (b *idleBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return b.body.Read(p)
	}
	_ = b.conn.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.body.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		// net/http reads the connection in the background once a body is
		// done (to see the client go); it must not inherit the deadline.
		_ = b.conn.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.s.metrics.bodyTimeouts.Inc()
		return n, &errBodyIdle{b.idle}
	}
	return n, err
}

func (b *idleBody) Close() error { return b.body.Close() }

// bodyBudget bounds the bytes of request bodies buffered at once, over
// every request: a buffer takes its bytes from the budget before it grows
// and gives them back when the request is done. Memory then has one bound
// whatever the number of connections and however their bodies trickle.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes; false when that would pass the bound.
func (b *bodyBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

// give returns n bytes taken before.
func (b *bodyBudget) give(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}

// errBodyBudget answers a request whose body would pass the budget.
var errBodyBudget = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
	Msg: "the node is receiving too many request bodies at once; retry", RetryAfter: time.Second}

// readBody reads at most limit bytes of r's body into a buffer that grows
// as bytes arrive, its memory taken from the body budget. A longer body is
// a 413, found from Content-Length before reading where it is declared; a
// declared length smaller than the limit only sizes the buffer once bytes
// come. It returns the body and the bytes taken from the budget, to give
// back once the body is no longer needed.
func (s *Server) readBody(r *http.Request, limit int64, what string) ([]byte, int64, error) {
	if r.ContentLength > limit {
		return nil, 0, tooLarge("the %s is %d bytes, more than the %d allowed", what, r.ContentLength, limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, 0, nil
	}
	// The buffer never needs more than the limit plus one byte (to see a
	// longer body), or the declared length plus one (to see its end).
	most := limit + 1
	if r.ContentLength >= 0 {
		most = r.ContentLength + 1
	}
	size := min(most, firstBodyChunk)
	if !s.budget.take(size) {
		return nil, 0, errBodyBudget
	}
	held := size
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, held, tooLarge("the %s is more than the %d bytes allowed", what, limit)
			}
			target := min(2*int64(cap(buf)), most)
			if target <= int64(cap(buf)) { // longer than declared: only the limit holds
				target = min(2*int64(cap(buf)), limit+1)
			}
			grow := target - int64(cap(buf))
			if !s.budget.take(grow) {
				return nil, held, errBodyBudget
			}
			held += grow
			buf = append(make([]byte, 0, int64(cap(buf))+grow), buf...)
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, held, bodyReadError(err, what, limit)
		}
	}
	if int64(len(buf)) > limit {
		return nil, held, tooLarge("the %s is more than the %d bytes allowed", what, limit)
	}
	return buf, held, nil
}

// bodyReadError maps an error reading a body to its answer.
func bodyReadError(err error, what string, limit int64) error {
	var idle *errBodyIdle
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &idle):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Msg: idle.Error(), Err: err}
	case errors.As(err, &mbe):
		return tooLarge("the %s is more than the %d bytes allowed", what, limit)
	}
	return badRequest("reading the request body: %v", err)
}
