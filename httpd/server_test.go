package httpd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
	"github.com/prometheus/client_golang/prometheus"
)

// wantError checks an error answer: its status, its JSON body and code.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d (body %q)", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q, want JSON", ct)
	}
	var body struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	if body.Code != code || body.Error == "" {
		t.Fatalf("error body %q: want code %q and a message", rec.Body, code)
	}
}

func TestStorageErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("engine: append to /d/wal/0001: %w", wal.ErrDiskFull), http.StatusInsufficientStorage, CodeDiskFull},
		{fmt.Errorf("engine: fsync: %w", wal.ErrIO), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("cluster: put: %w", engine.ErrClosed), http.StatusServiceUnavailable, CodeUnavailable},
		{errors.New("something storage-side"), http.StatusServiceUnavailable, CodeUnavailable},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			s, fc, _ := newFakeServer(t, nil)
			fc.err = c.err
			h := s.Handler()
			wantError(t, do(t, h, http.MethodPut, "/cache/k", strings.NewReader("v")), c.status, c.code)
			wantError(t, do(t, h, http.MethodPut, "/cache/k", strings.NewReader(`{"value":"v"}`), "Content-Type", "application/json"), c.status, c.code)
			wantError(t, do(t, h, http.MethodDelete, "/cache/k", nil), c.status, c.code)
			if strings.Contains(do(t, h, http.MethodPut, "/cache/k", strings.NewReader("v")).Body.String(), "/d/wal") {
				t.Fatal("an internal path leaked into the answer")
			}
		})
	}
}

func TestRequestErrorWrapped(t *testing.T) {
	err := fmt.Errorf("blob: %w", &Error{Status: http.StatusNotFound, Code: CodeNotFound, Msg: "no such blob"})
	status, code, msg, server := statusOf(err)
	if status != http.StatusNotFound || code != CodeNotFound || msg != "no such blob" || server {
		t.Fatalf("statusOf = %d %s %q %v", status, code, msg, server)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	s, _, _ := newFakeServer(t, nil)
	h := s.Handler()
	wantError(t, do(t, h, http.MethodGet, "/nope", nil), http.StatusNotFound, CodeNotFound)
	wantError(t, do(t, h, http.MethodGet, "/blob/x", nil), http.StatusNotFound, CodeNotFound)
	rec := do(t, h, http.MethodPost, "/cache/k", strings.NewReader("v"))
	wantError(t, rec, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	allow := rec.Header().Get("Allow")
	for _, m := range []string{"GET", "HEAD", "PUT", "DELETE"} {
		if !strings.Contains(allow, m) {
			t.Fatalf("Allow %q lacks %s", allow, m)
		}
	}
	rec = do(t, h, http.MethodDelete, "/cache", nil)
	wantError(t, rec, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	if rec.Header().Get("Allow") != "GET" {
		t.Fatalf("Allow %q on /cache, want GET", rec.Header().Get("Allow"))
	}
}

func TestPanicRecovered(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	fc.panics = true
	h := s.Handler()
	wantError(t, do(t, h, http.MethodGet, "/cache/k", nil), http.StatusInternalServerError, CodeInternal)
	fc.mu.Lock()
	fc.panics = false
	fc.mu.Unlock()
	wantError(t, do(t, h, http.MethodGet, "/cache/k", nil), http.StatusNotFound, CodeNotFound)
}

func TestMetricsCountRequests(t *testing.T) {
	s, _, reg := newFakeServer(t, nil)
	h := s.Handler()
	do(t, h, http.MethodPut, "/cache/a/b", strings.NewReader("v"))
	do(t, h, http.MethodGet, "/cache/a/b", nil)
	do(t, h, http.MethodGet, "/cache/a/b", nil)
	do(t, h, http.MethodGet, "/cache/zzz", nil)
	do(t, h, http.MethodGet, "/no/such/route", nil)
	do(t, h, http.MethodPost, "/cache/a", nil)
	do(t, h, http.MethodPatch, "/healthz", nil)

	rec := do(t, h, http.MethodGet, "/metrics", nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	text := rec.Body.String()
	for _, line := range []string{
		`disperse_http_requests_total{method="GET",route="/cache/*key",status="200"} 2`,
		`disperse_http_requests_total{method="GET",route="/cache/*key",status="404"} 1`,
		`disperse_http_requests_total{method="PUT",route="/cache/*key",status="200"} 1`,
		`disperse_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`disperse_http_requests_total{method="POST",route="/cache/*key",status="405"} 1`,
		`disperse_http_requests_total{method="PATCH",route="/healthz",status="405"} 1`,
		`disperse_http_request_duration_seconds_count{method="GET",route="/cache/*key"} 3`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if strings.Contains(text, "a/b") || strings.Contains(text, "no/such") {
		t.Error("a raw path leaked into a metric label")
	}
	// Only the routes and methods requested have a histogram.
	if strings.Contains(text, `disperse_http_request_duration_seconds_count{method="DELETE"`) ||
		strings.Contains(text, `route="/blob/*path"`) {
		t.Error("a histogram listed for a route or method never requested")
	}
	// The counters live in the registry the server was given.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "disperse_http_requests_total"
	}
	if !found {
		t.Fatal("the request counter is not in the given registry")
	}
}

func TestTwoServersOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Cache: newFakeCache(), Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Cache: newFakeCache(), Registerer: reg}); err == nil {
		t.Fatal("a second server registered the same metrics in one registry without error")
	}
	// Each with a registry of its own is fine.
	for range 2 {
		if _, err := New(Config{Cache: newFakeCache()}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var ready atomic.Bool
	s, _, _ := newFakeServer(t, func(c *Config) {
		c.Ready = func() (bool, string) {
			if ready.Load() {
				return true, "synced with n2"
			}
			return false, "waiting for the first sync"
		}
	})
	h := s.Handler()
	wantStatus(t, do(t, h, http.MethodGet, "/healthz", nil).Code, http.StatusOK, nil)
	rec := do(t, h, http.MethodGet, "/readyz", nil)
	wantError(t, rec, http.StatusServiceUnavailable, CodeUnavailable)
	var notReady struct{ Error, Code, Reason string }
	if err := json.Unmarshal(rec.Body.Bytes(), &notReady); err != nil || notReady.Reason != "waiting for the first sync" ||
		!strings.Contains(notReady.Error, "waiting for the first sync") || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("not ready: %s %v (%v): want the reason and Retry-After", rec.Body, rec.Header(), err)
	}
	ready.Store(true)
	rec = do(t, h, http.MethodGet, "/readyz", nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if got := rec.Body.String(); got != `{"reason":"synced with n2","status":"ready"}` {
		t.Fatalf("ready: %s", got)
	}
}

func TestMembers(t *testing.T) {
	ms := fakeMembers{{Name: "n1", Addr: "127.0.0.1", GossipPort: 7946, HTTPAddr: "127.0.0.1:8000", State: "alive"}}
	s, _, _ := newFakeServer(t, func(c *Config) { c.Members = ms })
	rec := do(t, s.Handler(), http.MethodGet, "/cluster/members", nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	var got []cluster.Member
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != 1 || got[0] != ms[0] {
		t.Fatalf("members %s (%v)", rec.Body, err)
	}
	if !strings.Contains(rec.Body.String(), `"gossip_port":7946`) {
		t.Fatalf("members %s: want the API.md field names", rec.Body)
	}
	s, _, _ = newFakeServer(t, nil)
	if rec = do(t, s.Handler(), http.MethodGet, "/cluster/members", nil); rec.Body.String() != "[]" {
		t.Fatalf("members without a source: %s, want []", rec.Body)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{},
		{Cache: newFakeCache(), MaxKeyBytes: -1},
		{Cache: newFakeCache(), MaxValueBytes: -1},
		{Cache: newFakeCache(), Registerer: prometheus.WrapRegistererWithPrefix("x_", prometheus.NewRegistry())},
	}
	for i, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("config %d validated", i)
		}
		if _, err := New(c); err == nil {
			t.Errorf("config %d: New succeeded", i)
		}
	}
	d := DefaultConfig()
	if ok, _ := d.Ready(); d.MaxKeyBytes != 1024 || d.MaxValueBytes != 1<<20 || !ok {
		t.Fatalf("defaults %+v", d)
	}
}

func TestMatchTemplate(t *testing.T) {
	for _, c := range []struct {
		tmpl, path string
		want       bool
	}{
		{"/healthz", "/healthz", true},
		{"/healthz", "/healthz/x", false},
		{"/cache/*key", "/cache/a/b", true},
		{"/cache/*key", "/cache/", true},
		{"/cache/*key", "/cache", false},
		{"/internal/sync/:op", "/internal/sync/tree", true},
		{"/internal/sync/:op", "/internal/sync/", false},
		{"/internal/sync/:op", "/internal/sync/tree/more", false},
		{"/a/:x/b", "/a/1/b", true},
		{"/a/:x/b", "/a/1/c", false},
	} {
		if got := matchTemplate(c.tmpl, c.path); got != c.want {
			t.Errorf("matchTemplate(%q, %q) = %v, want %v", c.tmpl, c.path, got, c.want)
		}
	}
}
