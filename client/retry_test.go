package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scripted serves the answers of script in turn (the last one for ever)
// and counts the requests.
type scripted struct {
	n      atomic.Int32
	script []func(w http.ResponseWriter, r *http.Request)
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.n.Add(1)) - 1
	s.script[min(i, len(s.script)-1)](w, r)
}

func answer(status int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

const unavailableBody = `{"error":"the node's storage is unavailable","code":"unavailable"}`

// TestRetryOn503ThenSuccess: 503s are retried with a growing backoff.
func TestRetryOn503ThenSuccess(t *testing.T) {
	s := &scripted{script: []func(http.ResponseWriter, *http.Request){
		answer(503, unavailableBody, "Content-Type", "application/json"),
		answer(503, unavailableBody, "Content-Type", "application/json"),
		answer(200, "v", "Etag", `"0000000000010000000000000000000a"`),
	}}
	c, w := newTestClient(t, serve(t, s))
	e, err := c.Get(context.Background(), "k")
	if err != nil || string(e.Value) != "v" {
		t.Fatalf("get: %v", err)
	}
	if s.n.Load() != 3 {
		t.Fatalf("%d requests, want 3", s.n.Load())
	}
	ws := w.all()
	if len(ws) != 2 || ws[0] < DefaultMinBackoff/2 || ws[0] > DefaultMinBackoff || ws[1] < DefaultMinBackoff || ws[1] > 2*DefaultMinBackoff {
		t.Fatalf("waits %v: want about 100ms then 200ms", ws)
	}
}

// TestRetriesRunOut: the last error is returned after the retries.
func TestRetriesRunOut(t *testing.T) {
	s := &scripted{script: []func(http.ResponseWriter, *http.Request){answer(502, "<html><body>Bad Gateway</body></html>")}}
	c, _ := newTestClient(t, serve(t, s), WithRetries(2))
	_, err := c.Get(context.Background(), "k")
	var e *Error
	if !errors.As(err, &e) || e.Status != 502 || s.n.Load() != 3 {
		t.Fatalf("after %d requests: %#v", s.n.Load(), err)
	}
	if e.Message != "bad gateway" {
		t.Errorf("an HTML body gave message %q", e.Message)
	}
}

// TestNoRetryOn4xx: 400, 404, 412 ... are answered at once.
func TestNoRetryOn4xx(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		sentinel error
		msg      string
	}{
		{400, `{"error":"limit must be a whole number","code":"bad_request"}`, ErrBadRequest, "limit must be a whole number (400 bad_request)"},
		{404, `{"error":"blob not found","code":"not_found"}`, ErrNotFound, "blob not found (404 not_found)"},
		{413, `{"error":"value too large","code":"too_large"}`, ErrTooLarge, "value too large (413 too_large)"},
		{507, `{"error":"the node is at its memory bound","code":"memory_full"}`, ErrMemoryFull, "the node is at its memory bound (507 memory_full)"},
		{507, `{"error":"the node's disk is full","code":"disk_full"}`, ErrDiskFull, "the node's disk is full (507 disk_full)"},
		{404, "404 page not found\n", ErrNotFound, "404 page not found (404 not_found)"},
		{403, "", ErrForbidden, "forbidden (403 forbidden)"},
		{418, "\x00\xff\xfe", nil, "i'm a teapot (418)"},
	} {
		s := &scripted{script: []func(http.ResponseWriter, *http.Request){answer(tc.status, tc.body)}}
		c, w := newTestClient(t, serve(t, s))
		_, err := c.Get(context.Background(), "k")
		if s.n.Load() != 1 || len(w.all()) != 0 {
			t.Errorf("%d: %d requests", tc.status, s.n.Load())
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("%d %q: %v is not %v", tc.status, tc.body, err, tc.sentinel)
		}
		if err == nil || err.Error() != tc.msg {
			t.Errorf("%d %q: error %q, want %q", tc.status, tc.body, err, tc.msg)
		}
	}
}

// TestRetryAfter: a 429's Retry-After is the wait when it is longer than
// the backoff.
func TestRetryAfter(t *testing.T) {
	s := &scripted{script: []func(http.ResponseWriter, *http.Request){
		answer(429, `{"error":"too many requests","code":"rate_limited"}`, "Retry-After", "7"),
		answer(204, ""),
	}}
	c, w := newTestClient(t, serve(t, s))
	if err := c.Delete(context.Background(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if ws := w.all(); len(ws) != 1 || ws[0] != 7*time.Second {
		t.Fatalf("waits %v, want [7s]", ws)
	}
	// A wait past the context's deadline is not started.
	s.n.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	s.script[0] = answer(429, `{"error":"too many requests","code":"rate_limited"}`, "Retry-After", "7200")
	err := c.Delete(ctx, "k", nil)
	var e *Error
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &e) || e.RetryAfter != 2*time.Hour || s.n.Load() != 1 {
		t.Fatalf("Retry-After past the deadline: %v after %d requests", err, s.n.Load())
	}
}

// TestConditionalWriteRetries: a conditional PUT is retried after a 503
// (nothing was applied) but not after a 502 (a proxy may have passed it on).
func TestConditionalWriteRetries(t *testing.T) {
	ok := answer(200, `{"key":"k","version":"00000000000100000000000000000001","expires_at":null}`)
	s := &scripted{script: []func(http.ResponseWriter, *http.Request){answer(503, unavailableBody), ok}}
	c, _ := newTestClient(t, serve(t, s))
	if _, err := c.Put(context.Background(), "k", []byte("v"), &PutOptions{IfNoneMatch: "*"}); err != nil || s.n.Load() != 2 {
		t.Fatalf("after a 503: %v, %d requests", err, s.n.Load())
	}
	s = &scripted{script: []func(http.ResponseWriter, *http.Request){answer(502, "bad gateway"), ok}}
	c, _ = newTestClient(t, serve(t, s))
	if _, err := c.Put(context.Background(), "k", []byte("v"), &PutOptions{IfNoneMatch: "*"}); err == nil || s.n.Load() != 1 {
		t.Fatalf("after a 502: %v, %d requests", err, s.n.Load())
	}
}

// TestBlobPutRetry: an upload from an io.Seeker is sent again whole after a
// 503; one from a plain reader that was read is not.
func TestBlobPutRetry(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100<<10)
	var got atomic.Value
	store := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(b)
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"id":"b","size":1024000}`)
	}
	s := &scripted{script: []func(http.ResponseWriter, *http.Request){answer(503, unavailableBody), store}}
	c, _ := newTestClient(t, serve(t, s))
	m, err := c.PutBlob(context.Background(), "b", bytes.NewReader(data), nil)
	if err != nil || m.ID != "b" || s.n.Load() != 2 || !bytes.Equal(got.Load().([]byte), data) {
		t.Fatalf("seekable: %v after %d requests", err, s.n.Load())
	}

	s = &scripted{script: []func(http.ResponseWriter, *http.Request){answer(503, unavailableBody), store}}
	c, _ = newTestClient(t, serve(t, s))
	_, err = c.PutBlob(context.Background(), "b", io.MultiReader(bytes.NewReader(data)), nil)
	if !errors.Is(err, ErrUnavailable) || s.n.Load() != 1 {
		t.Fatalf("not seekable: %v after %d requests", err, s.n.Load())
	}
}

// TestConnectionRefusedRetried: failing to connect is retried, then
// reported.
func TestConnectionRefusedRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, w := newTestClient(t, addr, WithRetries(2))
	_, err := c.Get(context.Background(), "k")
	if err == nil || !strings.Contains(err.Error(), "refused") || len(w.all()) != 2 {
		t.Fatalf("%v after waits %v", err, w.all())
	}
}

// TestAddresses: the forms of address New takes.
func TestAddresses(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8000":                "http://127.0.0.1:8000",
		"http://127.0.0.1:8000/":        "http://127.0.0.1:8000",
		"https://node.example:8443":     "https://node.example:8443",
		"http://proxy.example/disperse": "http://proxy.example/disperse",
	} {
		c, err := New(addr)
		if err != nil || c.Addr() != want {
			t.Errorf("%q: %v %v", addr, c, err)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://x?y=1"} {
		if _, err := New(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := New("x:1", WithCAFile("/nonexistent/ca.pem")); err == nil {
		t.Error("a missing CA file accepted")
	}
}

// A value or JSON answer longer than the client's bound fails the call
// instead of being read into memory whole; one within it is read.
func TestAnswerBound(t *testing.T) {
	big := strings.Repeat("v", 2048)
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cache/big":
			_, _ = io.WriteString(w, big)
		case "/cache/small":
			_, _ = io.WriteString(w, "v")
		default: // a listing
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"keys":["`+big+`"],"next":""}`)
		}
	}))
	c, err := New(url, WithMaxAnswerBytes(1024), WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, "big"); !errors.Is(err, ErrAnswerTooLarge) {
		t.Fatalf("a value over the bound: %v, want ErrAnswerTooLarge", err)
	}
	if _, err := c.List(ctx, "", "", 10); !errors.Is(err, ErrAnswerTooLarge) {
		t.Fatalf("a listing over the bound: %v, want ErrAnswerTooLarge", err)
	}
	if e, err := c.Get(ctx, "small"); err != nil || string(e.Value) != "v" {
		t.Fatalf("a value within the bound: %+v %v", e, err)
	}
	if _, err := New(url, WithMaxAnswerBytes(0)); err == nil {
		t.Fatal("a zero bound was taken")
	}
}
