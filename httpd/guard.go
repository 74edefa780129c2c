package httpd

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// access is what a request needs before it reaches its handler.
type access uint8

const (
	accessOpen  access = iota // /healthz, /readyz: nothing
	accessPeer                // /internal/*: the peer middleware decides, not client tokens
	accessRead                // a token of scope read or more
	accessWrite               // write or more
	accessAdmin               // admin
)

// scopeOf is the scope an access needs.
func (a access) scope() string {
	switch a {
	case accessRead:
		return ScopeRead
	case accessWrite:
		return ScopeWrite
	case accessAdmin:
		return ScopeAdmin
	}
	return ""
}

// internalPrefix starts every node-to-node route (shard transfers, cluster
// sync). Client tokens are not asked for there; the peer middleware
// authenticates those requests.
const internalPrefix = "/internal/"

// accessOf classifies a request by its method and path. It looks at the
// path as the router matches it (URL.Path), so a request cannot reach a
// route under one classification and be checked under another. Paths that
// match no route are classified by method like any other, so an unknown
// path answers 401 to a stranger rather than 404.
func (s *Server) accessOf(method, path string) access {
	switch {
	case path == "/healthz" || path == "/readyz":
		return accessOpen
	case strings.HasPrefix(path, internalPrefix):
		return accessPeer
	case path == "/metrics":
		if s.cfg.MetricsPublic {
			return accessOpen
		}
		return accessAdmin
	case path == "/cluster" || strings.HasPrefix(path, "/cluster/"):
		return accessAdmin
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return accessRead
	}
	return accessWrite
}

// guard is the middleware in front of every handler: it authenticates the
// client's bearer token and checks its scope, applies the per-client rate
// limit, and puts the request body under the idle timeout. The order is
// authenticate, limit, then refuse: a limited client gets 429 whatever its
// token, so guessing tokens is rate-limited too.
func (s *Server) guard(c *gin.Context) {
	r := c.Request
	acc := s.accessOf(r.Method, r.URL.Path)
	if acc == accessPeer && !s.checkPeer(c) {
		return
	}
	var tok *tokenEntry
	checked := s.tokens != nil && acc >= accessRead
	if checked {
		if secret, ok := bearer(r.Header.Get("Authorization")); ok {
			tok = s.tokens.lookup(secret)
		}
	}
	if s.rates != nil && acc >= accessRead {
		key := rateKey{}
		if tok != nil {
			key.name = tok.name
		} else {
			key.ip = clientIP(r.RemoteAddr)
		}
		if ok, retry := s.rates.allow(key, time.Now()); !ok {
			s.metrics.rejectedRate.Inc()
			c.Writer.Header()["Retry-After"] = []string{strconv.Itoa(retry)}
			s.writeErrorBody(c, http.StatusTooManyRequests, s.bodies.rateLimited)
			return
		}
	}
	if checked {
		switch {
		case tok == nil:
			s.unauthorized(c)
			return
		case !ScopeAllows(tok.scope, acc.scope()):
			s.forbidden(c, tok.scope, acc.scope())
			return
		}
	}
	s.watchBody(c)
}

// unauthorized answers 401: no token, or one the node does not know.
func (s *Server) unauthorized(c *gin.Context) {
	s.metrics.rejectedAuth.Inc()
	h := c.Writer.Header()
	if _, ok := bearer(c.Request.Header.Get("Authorization")); ok {
		h["Www-Authenticate"] = []string{`Bearer realm="disperse", error="invalid_token"`}
		s.writeErrorBody(c, http.StatusUnauthorized, s.bodies.badToken)
		return
	}
	h["Www-Authenticate"] = []string{`Bearer realm="disperse"`}
	s.writeErrorBody(c, http.StatusUnauthorized, s.bodies.noToken)
}

// forbidden answers 403: a valid token whose scope is too small.
func (s *Server) forbidden(c *gin.Context, have, need string) {
	s.metrics.rejectedScope.Inc()
	c.Writer.Header()["Www-Authenticate"] = []string{`Bearer realm="disperse", error="insufficient_scope", scope="` + need + `"`}
	s.writeErrorBody(c, http.StatusForbidden,
		errorJSON("this request needs a token of scope "+need+"; this token's scope is "+have, CodeForbidden))
}

// guardBodies are the error bodies the guard answers most, encoded once.
type guardBodies struct {
	noToken, badToken, rateLimited, tooManyTransfers []byte
}

func newGuardBodies() guardBodies {
	return guardBodies{
		noToken:          errorJSON("this request needs a token: send Authorization: Bearer TOKEN", CodeUnauthorized),
		badToken:         errorJSON("the bearer token is not valid", CodeUnauthorized),
		rateLimited:      errorJSON("too many requests from this client; retry after the time in Retry-After", CodeRateLimited),
		tooManyTransfers: errorJSON("too many blob transfers at once on this node; retry after the time in Retry-After", CodeUnavailable),
	}
}

// retryAfterSeconds is d as a Retry-After value: whole seconds, rounded
// up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
