package httpd

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute is the route label of requests no route matched (404). A
// 405 is labelled with the route its path matches under other methods.
const unmatchedRoute = "unmatched"

// httpMetrics are the request counter and latency histogram. The label
// handles of every registered route are made once, in prepare, so a request
// costs a read-only map lookup by route template and a few atomic adds.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// routes holds the handles of each route template by method index;
	// the "" entry is for requests no route matched (404). Read-only
	// after prepare.
	routes map[string]*[numMethods]*routeMetrics
	// templates are the route templates, those without parameters first.
	templates []string

	// rejected counts the requests the guard refused, by error code; the
	// three handles are its children.
	rejected                                  *prometheus.CounterVec
	rejectedAuth, rejectedScope, rejectedRate prometheus.Counter
	rejectedTransfers                         prometheus.Counter
	// bodyTimeouts counts request bodies cut by the idle timeout.
	bodyTimeouts prometheus.Counter
}

// Methods with handles of their own; any other is labelled OTHER.
var knownMethods = [...]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete,
	http.MethodPost, http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace}

const numMethods = len(knownMethods) + 1

// methodIndex is the index of a method in knownMethods, or of OTHER.
func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPut:
		return 2
	case http.MethodDelete:
		return 3
	}
	for i := 4; i < len(knownMethods); i++ {
		if knownMethods[i] == m {
			return i
		}
	}
	return len(knownMethods)
}

// routeMetrics are the handles of one route and method. The counter of
// each status is made on first use and kept.
type routeMetrics struct {
	route, method string
	requests      *prometheus.CounterVec
	durations     *prometheus.HistogramVec
	duration      atomic.Pointer[prometheus.Observer] // made at the first request
	status        [600]atomic.Pointer[prometheus.Counter]
}

// observe records a request's time. The histogram of a route and method
// is made at its first request, so that an idle node does not list every
// route with every method.
func (rm *routeMetrics) observe(seconds float64) {
	if o := rm.duration.Load(); o != nil {
		(*o).Observe(seconds)
		return
	}
	o := rm.durations.WithLabelValues(rm.route, rm.method)
	rm.duration.Store(&o)
	o.Observe(seconds)
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disperse_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "disperse_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disperse_http_rejected_total",
			Help: "Requests refused before their handler: unauthorized (401), forbidden (403), rate_limited (429), unavailable (503: every blob transfer slot taken).",
		}, []string{"code"}),
		bodyTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "disperse_http_body_timeouts_total",
			Help: "Requests cut because their body moved no byte for the body idle timeout.",
		}),
	}
	m.rejectedAuth = m.rejected.WithLabelValues(CodeUnauthorized)
	m.rejectedScope = m.rejected.WithLabelValues(CodeForbidden)
	m.rejectedRate = m.rejected.WithLabelValues(CodeRateLimited)
	m.rejectedTransfers = m.rejected.WithLabelValues(CodeUnavailable)
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.rejected, m.bodyTimeouts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpd: registering metrics: %w", err)
		}
	}
	return m, nil
}

// prepare makes the handles of every route, and of unmatched requests.
func (m *httpMetrics) prepare(routes gin.RoutesInfo) {
	m.routes = map[string]*[numMethods]*routeMetrics{"": m.newRoute(unmatchedRoute)}
	var exact, params []string
	for _, r := range routes {
		if m.routes[r.Path] != nil {
			continue
		}
		m.routes[r.Path] = m.newRoute(r.Path)
		if strings.ContainsAny(r.Path, ":*") {
			params = append(params, r.Path)
		} else {
			exact = append(exact, r.Path)
		}
	}
	m.templates = append(exact, params...)
}

// templateOf is the route template path matches ("" for none), for a
// request that matched no route under its own method.
func (m *httpMetrics) templateOf(path string) string {
	for _, t := range m.templates {
		if matchTemplate(t, path) {
			return t
		}
	}
	return ""
}

// matchTemplate reports whether path matches a gin route template, whose
// ":name" is one path segment and "*name" the rest of the path.
func matchTemplate(tmpl, path string) bool {
	for {
		i := strings.IndexAny(tmpl, ":*")
		if i < 0 {
			return tmpl == path
		}
		if !strings.HasPrefix(path, tmpl[:i]) {
			return false
		}
		path = path[i:]
		if tmpl[i] == '*' {
			return true
		}
		tmpl = tmpl[i:]
		seg := strings.IndexByte(path, '/')
		if seg < 0 {
			seg = len(path)
		}
		if seg == 0 {
			return false
		}
		end := strings.IndexByte(tmpl, '/')
		if end < 0 {
			end = len(tmpl)
		}
		tmpl, path = tmpl[end:], path[seg:]
	}
}

// newRoute makes the handles of one route for every method.
func (m *httpMetrics) newRoute(route string) *[numMethods]*routeMetrics {
	var byMethod [numMethods]*routeMetrics
	for i := range byMethod {
		method := "OTHER"
		if i < len(knownMethods) {
			method = knownMethods[i]
		}
		byMethod[i] = &routeMetrics{
			route:     route,
			method:    method,
			requests:  m.requests,
			durations: m.duration,
		}
	}
	return &byMethod
}

// lookup returns the handles of the route c matched.
func (m *httpMetrics) lookup(c *gin.Context) *routeMetrics {
	route := c.FullPath()
	if route == "" && c.Writer.Status() == http.StatusMethodNotAllowed {
		route = m.templateOf(c.Request.URL.Path)
	}
	byMethod := m.routes[route]
	if byMethod == nil { // no route, or one added after prepare
		byMethod = m.routes[""]
	}
	return byMethod[methodIndex(c.Request.Method)]
}

// counter returns the request counter of status.
func (rm *routeMetrics) counter(status int) prometheus.Counter {
	if status < 0 || status >= len(rm.status) {
		return rm.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(status))
	}
	if c := rm.status[status].Load(); c != nil {
		return *c
	}
	c := rm.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(status))
	rm.status[status].Store(&c)
	return c
}
