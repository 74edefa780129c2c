package httpd

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/gin-gonic/gin"
)

// discardWriter is a ResponseWriter that keeps the status and headers and
// drops the body, so a benchmark measures the router and not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

const benchKeys = 1024

// runGets sends GETs of benchKeys keys through h from parallel goroutines.
func runGets(b *testing.B, h http.Handler) {
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := seq.Add(1)
		reqs := make([]*http.Request, 64)
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, fmt.Sprintf("/cache/key-%04d", (int(g)*64+i)%benchKeys), nil)
		}
		w := &discardWriter{h: http.Header{}}
		for i := 0; pb.Next(); i++ {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%len(reqs)])
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}

// BenchmarkGetRouter is GET /cache/{key} through the full router:
// metrics, panic recovery, key checks, ETag, over an in-memory map.
func BenchmarkGetRouter(b *testing.B) {
	runGets(b, benchRouter(b))
}

// benchRouter is the full router over a fake cache holding benchKeys keys
// of 100 bytes.
func benchRouter(b *testing.B) http.Handler {
	s, fc, _ := newFakeServer(b, nil)
	for i := range benchKeys {
		k := fmt.Sprintf("key-%04d", i)
		fc.entries[k] = engine.Entry{Key: k, Value: []byte(strings.Repeat("v", 100)), ContentType: "text/plain",
			Version: engine.Version{Time: uint64(i+1) << 16, Node: 7}}
	}
	return s.Handler()
}

// BenchmarkGetBareGin is the baseline BenchmarkGetRouter is compared with:
// a bare gin handler over a mutex-guarded map, with no checks and no
// metrics.
func BenchmarkGetBareGin(b *testing.B) {
	runGets(b, bareGin())
}

// bareGin is a gin engine with one GET route that reads a mutex-guarded
// map of benchKeys keys of 100 bytes.
func bareGin() http.Handler {
	var mu sync.Mutex
	m := map[string][]byte{}
	for i := range benchKeys {
		m[fmt.Sprintf("key-%04d", i)] = []byte(strings.Repeat("v", 100))
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/cache/*key", func(c *gin.Context) {
		mu.Lock()
		v, ok := m[c.Param("key")[1:]]
		mu.Unlock()
		if !ok {
			c.Status(http.StatusNotFound)
			return
		}
		c.Data(http.StatusOK, "text/plain", v)
	})
	return r
}

// BenchmarkGetRouterVsBare serves GETs through the full router and through
// the bare baseline in alternating rounds of one goroutine, so both see
// the same machine load, and reports the router's throughput as a share
// of the baseline's (router/bare, higher is better; median of the rounds).
func BenchmarkGetRouterVsBare(b *testing.B) {
	router, bare := benchRouter(b), bareGin()
	reqs := make([]*http.Request, 64)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, fmt.Sprintf("/cache/key-%04d", i*7%benchKeys), nil)
	}
	w := &discardWriter{h: http.Header{}}
	round := func(h http.Handler, n int) time.Duration {
		start := time.Now()
		for i := range n {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%len(reqs)])
		}
		return time.Since(start)
	}
	// Short rounds and the median of the per-round ratios keep load spikes
	// from other processes out of the figure.
	const roundLen = 64
	var ratios []float64
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += roundLen {
		n := min(roundLen, b.N-done)
		tRouter := round(router, n)
		tBare := round(bare, n)
		ratios = append(ratios, float64(tBare)/float64(tRouter))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "router/bare")
}
