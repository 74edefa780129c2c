package httpd

import (
	"github.com/disperse/disperse/cluster"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// contentTypeJSON is the Content-Type of every JSON answer.
const contentTypeJSON = "application/json; charset=utf-8"

// Server is the HTTP face of one node. It holds no storage of its own: every
// route parses and checks the request, calls Cache, Members or Blobs, and
// maps the result to the contract of API.md.
type Server struct {
	cfg     Config
	log     *slog.Logger
	cache   Cache
	engine  *gin.Engine
	metrics *httpMetrics

	tokens *Tokens      // nil: no client authentication
	rates  *rateLimiter // nil: no rate limit
	budget bodyBudget   // bytes of request bodies buffered at once
	// transfers holds a token per blob stream being served (see
	// Config.MaxBlobTransfers); nil: no bound.
	transfers chan struct{}
	bodies    guardBodies // the guard's common error bodies

	notFoundBody []byte    // the JSON body of a cache miss, encoded once
	epoch        time.Time // start of the monotonic clock of the request timings
	contentTypes contentTypes
}

// handlerFunc is a route handler: it answers c itself on success and returns
// an error for writeError to answer otherwise.
type handlerFunc func(c *gin.Context) error

// New checks cfg, fills in its defaults and builds the router.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newHTTPMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		log:          cfg.Logger,
		cache:        cfg.Cache,
		metrics:      m,
		notFoundBody: errorJSON(errKeyNotFound.Msg, errKeyNotFound.Code),
		epoch:        time.Now(),
		tokens:       cfg.Tokens,
		bodies:       newGuardBodies(),
	}
	s.budget.max = cfg.MaxBodyMemory
	if cfg.MaxBlobTransfers > 0 {
		s.transfers = make(chan struct{}, cfg.MaxBlobTransfers)
	}
	if cfg.RateLimit > 0 {
		s.rates = newRateLimiter(cfg.RateLimit, cfg.RateBurst, cfg.MaxRateClients)
	}
	s.engine = s.router()
	s.metrics.prepare(s.engine.Routes())
	return s, nil
}

// Handler returns the http.Handler that serves every route.
func (s *Server) Handler() http.Handler { return s.engine }

// router builds the gin engine: the middleware, the routes, and the JSON
// answers for unknown routes and methods.
func (s *Server) router() *gin.Engine {
	// Release mode keeps gin from printing its route table and warnings to
	// stdout. The setting is gin's own and process-wide; setting it is
	// idempotent.
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.Use(s.observe, s.guard)

	r.GET("/cache", s.wrap(s.listKeys))
	r.GET("/cache/*key", s.wrap(s.getKey))
	r.HEAD("/cache/*key", s.wrap(s.getKey))
	r.PUT("/cache/*key", s.wrap(s.putKey))
	r.DELETE("/cache/*key", s.wrap(s.deleteKey))

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})))
	r.GET("/cluster/members", s.wrap(s.members))

	if s.cfg.Blobs != nil {
		s.blobRoutes(r)
	}
	if s.cfg.Peers != nil {
		r.POST(cluster.SyncPathPrefix+":op", gin.WrapH(s.cfg.Peers))
	}

	notFound := errorJSON("no such route", CodeNotFound)
	r.NoRoute(func(c *gin.Context) { s.writeErrorBody(c, http.StatusNotFound, notFound) })
	notAllowed := errorJSON("method not allowed on this route", CodeMethodNotAllowed)
	r.NoMethod(func(c *gin.Context) { s.writeErrorBody(c, http.StatusMethodNotAllowed, notAllowed) })
	return r
}

// wrap turns a handlerFunc into a gin handler that answers its error.
func (s *Server) wrap(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			s.writeError(c, err)
		}
	}
}
