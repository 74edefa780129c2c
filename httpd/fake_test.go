package httpd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeCache is an in-memory Cache for the routing and parsing tests. It
// records the writes it receives and can be told to fail.
type fakeCache struct {
	mu      sync.Mutex
	entries map[string]engine.Entry
	clock   uint64
	writes  []cluster.Write
	deletes []fakeDelete
	err     error // returned by Put and Delete when set
	panics  bool  // Get panics when set
}

type fakeDelete struct {
	key   string
	local bool
}

func newFakeCache() *fakeCache { return &fakeCache{entries: map[string]engine.Entry{}} }

func (f *fakeCache) Put(_ context.Context, w cluster.Write) (engine.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return engine.Entry{}, f.err
	}
	cur, ok := f.entries[w.Key]
	if !w.If.Holds(cur, ok) {
		return engine.Entry{}, fmt.Errorf("fake: %w", cluster.ErrPrecondition)
	}
	w.Value = slices.Clone(w.Value) // the caller's buffer is its own again on return
	f.writes = append(f.writes, w)
	f.clock++
	ent := engine.Entry{Key: w.Key, Value: w.Value, ContentType: w.ContentType,
		ExpiresAt: w.ExpiresAt, Version: engine.Version{Time: f.clock << 16, Node: 7}, Local: w.Local, Deleted: w.Delete}
	if w.Delete {
		delete(f.entries, w.Key)
		return ent, nil
	}
	f.entries[w.Key] = ent
	return ent, nil
}

func (f *fakeCache) Delete(_ context.Context, key string, local bool) (engine.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return engine.Entry{}, f.err
	}
	f.deletes = append(f.deletes, fakeDelete{key, local})
	delete(f.entries, key)
	f.clock++
	return engine.Entry{Key: key, Deleted: true, Version: engine.Version{Time: f.clock << 16}}, nil
}

func (f *fakeCache) Get(key string) (engine.Entry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics {
		panic("fake: Get panics")
	}
	e, ok := f.entries[key]
	return e, ok
}

func (f *fakeCache) List(prefix, after string, limit int) ([]string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []string
	for k := range f.entries {
		if strings.HasPrefix(k, prefix) && k > after {
			all = append(all, k)
		}
	}
	sort.Strings(all)
	if len(all) > limit {
		return all[:limit], all[limit-1]
	}
	return all, ""
}

// lastWrite returns the last write Put received.
func (f *fakeCache) lastWrite(t testing.TB) cluster.Write {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.writes) == 0 {
		t.Fatal("no write reached the cache")
	}
	return f.writes[len(f.writes)-1]
}

type fakeMembers []cluster.Member

func (m fakeMembers) Members() []cluster.Member { return m }

// testNow is the fixed clock of the fake-backed servers.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newFakeServer builds a Server over a fakeCache with a fixed clock and a
// registry of its own; mod may change the config first.
func newFakeServer(t testing.TB, mod func(*Config)) (*Server, *fakeCache, *prometheus.Registry) {
	t.Helper()
	fc := newFakeCache()
	reg := prometheus.NewRegistry()
	cfg := Config{Cache: fc, Registerer: reg, Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, fc, reg
}

// do sends one request through h and returns the recorded answer. headers
// come in name, value pairs.
func do(t testing.TB, h http.Handler, method, target string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
