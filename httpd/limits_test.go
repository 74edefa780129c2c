package httpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/internal/sockio"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// liveServer is a Server behind a real listener and http.Server, as serve
// runs it.
type liveServer struct {
	s     *Server
	fc    *fakeCache
	reg   *prometheus.Registry
	url   string // http:// or https://127.0.0.1:port
	addr  string // 127.0.0.1:port
	hs    *http.Server
	limit net.Listener
}

// startLive serves a fake-backed Server on 127.0.0.1:0 through Listen with
// lcfg; mod may change the server's config.
func startLive(t testing.TB, mod func(*Config), lcfg ListenerConfig) *liveServer {
	t.Helper()
	s, fc, reg := newFakeServer(t, mod)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lcfg.Registerer = reg
	ln = sockio.Listen(ln) // as the binary serves
	lim, err := Listen(ln, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go func() { _ = hs.Serve(lim) }()
	t.Cleanup(func() { _ = hs.Close() })
	scheme := "http"
	if lcfg.TLS != nil {
		scheme = "https"
	}
	addr := ln.Addr().String()
	return &liveServer{s: s, fc: fc, reg: reg, url: scheme + "://" + addr, addr: addr, hs: hs, limit: lim}
}

// metric returns the value of a counter or gauge without labels, or of the
// child whose first label has value label.
func metric(t testing.TB, reg prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			return valueOf(m)
		}
	}
	return 0
}

func valueOf(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// rawRequest opens a connection and writes head (and nothing more).
func rawRequest(t testing.TB, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads one HTTP answer from c, waiting at most d.
func readAnswer(t testing.TB, c net.Conn, d time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// wantCode checks an error body's code.
func wantCode(t testing.TB, body []byte, code string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Code != code || e.Error == "" {
		t.Fatalf("body %q, want an error with code %q", body, code)
	}
}

// TestBodyIdleTimeout: a body that stops moving is cut with 400 after the
// idle timeout, and nothing is stored; a body that keeps moving, however
// slowly, is not cut even when it takes longer than the timeout in all.
func TestBodyIdleTimeout(t *testing.T) {
	const idle = time.Second
	ls := startLive(t, func(c *Config) { c.BodyIdleTimeout = idle }, ListenerConfig{})

	stalled := rawRequest(t, ls.addr, "PUT /cache/stalled HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"+
		"Content-Length: 100\r\n\r\nabc")
	resp, body := readAnswer(t, stalled, 30*idle)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stalled body: status %d %q, want 400", resp.StatusCode, body)
	}
	wantCode(t, body, CodeBadRequest)
	if !strings.Contains(string(body), "no byte of the request body arrived for 1s") {
		t.Fatalf("stalled body: %s", body)
	}
	// The connection is closed after the answer.
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := stalled.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the connection is still open after a cut body (read %d bytes)", n)
	}
	if _, ok := ls.fc.Get("stalled"); ok {
		t.Fatal("a cut body was stored")
	}
	if got := metric(t, ls.reg, "disperse_http_body_timeouts_total", ""); got != 1 {
		t.Fatalf("body timeouts counted %v, want 1", got)
	}

	// 30 bytes, one every 100ms: 3s in all, three times the idle timeout.
	const n = 30
	steady := rawRequest(t, ls.addr, fmt.Sprintf("PUT /cache/steady HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"+
		"Content-Length: %d\r\n\r\n", n))
	for range n {
		time.Sleep(idle / 10)
		if _, err := steady.Write([]byte("s")); err != nil {
			t.Fatalf("the steady body was cut: %v", err)
		}
	}
	resp, body = readAnswer(t, steady, 30*idle)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("steady body: status %d %q, want 200", resp.StatusCode, body)
	}
	if e, ok := ls.fc.Get("steady"); !ok || string(e.Value) != strings.Repeat("s", n) {
		t.Fatalf("steady value %q", e.Value)
	}
}

// TestBodyIdleNotInheritedByHandler: once a body is read to its end, the
// idle deadline no longer applies; a handler that works longer than the
// timeout after reading the body keeps its request.
func TestBodyIdleNotInheritedByHandler(t *testing.T) {
	const idle = 300 * time.Millisecond
	slow := &slowCache{fakeCache: newFakeCache(), delay: 4 * idle}
	ls := startLive(t, func(c *Config) { c.BodyIdleTimeout = idle; c.Cache = slow }, ListenerConfig{})
	req, _ := http.NewRequest(http.MethodPut, ls.url+"/cache/k", strings.NewReader("value"))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
}

// slowCache is a fake cache whose Put takes delay and fails when the
// request's context ends first.
type slowCache struct {
	*fakeCache
	delay time.Duration
}

func (c *slowCache) Put(ctx context.Context, w cluster.Write) (engine.Entry, error) {
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return engine.Entry{}, ctx.Err()
	}
	return c.fakeCache.Put(ctx, w)
}

// TestSlowBodiesBounded: 300 connections each send the head of a 6 MiB
// JSON PUT and 1 KiB of it, then stall. Other clients are served
// meanwhile, and the heap and stacks of the process grow by less than
// 32 MiB for the 300 (about 30 KiB each: the first 16 KiB of each body
// buffer, net/http's buffers and goroutines), where buffering the declared
// lengths would take 1.8 GiB.
func TestSlowBodiesBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("300 connections: skipped with -short")
	}
	const conns, bound = 300, 32 << 20
	ls := startLive(t, nil, ListenerConfig{})
	before := memInUse()

	declared := 6 << 20
	head := fmt.Sprintf("PUT /cache/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", declared)
	chunk := `{"value": "` + strings.Repeat("x", 1<<10)
	var slow []net.Conn
	for range conns {
		c := rawRequest(t, ls.addr, head+chunk)
		slow = append(slow, c)
	}
	// Every one of them is in its handler, holding its first body chunk.
	waitUntil(t, 30*time.Second, "300 bodies being read", func() bool {
		return ls.s.budget.used.Load() == conns*firstBodyChunk
	})

	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 50 {
		url := fmt.Sprintf("%s/cache/other-%d", ls.url, i)
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("v"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("another client's PUT while 300 bodies stall: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("another client's PUT: %d", resp.StatusCode)
		}
		if resp, err = client.Get(url); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("another client's GET: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	grew := memInUse() - before
	t.Logf("heap and stacks grew %d KiB for %d stalled bodies (%d KiB each)", grew>>10, conns, grew/conns>>10)
	if grew > bound {
		t.Fatalf("heap and stacks grew %d MiB for %d stalled bodies, more than the %d MiB bound", grew>>20, conns, bound>>20)
	}
	for _, c := range slow {
		c.Close()
	}
	waitUntil(t, 30*time.Second, "the body budget to be given back", func() bool {
		return ls.s.budget.used.Load() == 0
	})
}

// memInUse is the heap and goroutine stacks in use after a collection.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBodyBudget: when the bodies being received would pass the budget, a
// request answers 503 with Retry-After instead of buffering more, and is
// served again once the budget is free.
func TestBodyBudget(t *testing.T) {
	ls := startLive(t, func(c *Config) { c.MaxBodyMemory = 4 * firstBodyChunk }, ListenerConfig{})
	head := "PUT /cache/big HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 500000\r\n\r\n"
	a := rawRequest(t, ls.addr, head+"a")
	b := rawRequest(t, ls.addr, head+"b")
	waitUntil(t, 10*time.Second, "two bodies being read", func() bool { return ls.s.budget.used.Load() == 2*firstBodyChunk })
	// A third fits its first chunk and one doubling (16 + 16 KiB), not the
	// next (32 KiB more).
	c := rawRequest(t, ls.addr, head+strings.Repeat("c", 2*firstBodyChunk+1))
	resp, body := readAnswer(t, c, 10*time.Second)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the budget: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	wantCode(t, body, CodeUnavailable)
	a.Close()
	b.Close()
	waitUntil(t, 10*time.Second, "the budget to be free", func() bool { return ls.s.budget.used.Load() == 0 })
	req, _ := http.NewRequest(http.MethodPut, ls.url+"/cache/after", strings.NewReader(strings.Repeat("v", 40000)))
	r2, err := http.DefaultClient.Do(req)
	if err != nil || r2.StatusCode != http.StatusOK {
		t.Fatalf("after the budget is free: %v %v", r2, err)
	}
	r2.Body.Close()
}

// TestDeclaredLengthNotTrusted: a declared length over the limit is 413
// before any byte is read; one under it sizes nothing until bytes come.
func TestDeclaredLengthNotTrusted(t *testing.T) {
	ls := startLive(t, nil, ListenerConfig{})
	c := rawRequest(t, ls.addr, "PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1073741824\r\n\r\n")
	resp, body := readAnswer(t, c, 10*time.Second)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared 1 GiB: %d %s", resp.StatusCode, body)
	}
	wantCode(t, body, CodeTooLarge)
	rawRequest(t, ls.addr, "PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nx")
	waitUntil(t, 10*time.Second, "the body being read", func() bool { return ls.s.budget.used.Load() > 0 })
	if got := ls.s.budget.used.Load(); got != firstBodyChunk {
		t.Fatalf("a declared 1 MB body with 1 byte sent holds %d bytes of buffer, want %d", got, firstBodyChunk)
	}
}

// TestRateLimit: a client past its burst gets 429 with Retry-After, other
// clients do not, and the client is served again once its bucket refills.
func TestRateLimit(t *testing.T) {
	ls := startLive(t, func(c *Config) {
		c.Tokens = testTokens(t)
		c.RateLimit, c.RateBurst = 2, 3
	}, ListenerConfig{})
	get := func(secret string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ls.url+"/cache/k", nil)
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := get(readSecret); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp := get(readSecret)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("past the burst: %d, Retry-After %q; want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another token is another client; so is a stranger, counted by address.
	if resp := get(writeSecret); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another token: %d", resp.StatusCode)
	}
	for range 3 {
		if resp := get(""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("stranger within its burst: %d", resp.StatusCode)
		}
	}
	if resp := get(""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stranger past its burst: %d, want 429 before 401", resp.StatusCode)
	}
	// Health checks are not counted.
	if r, err := http.Get(ls.url + "/healthz"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while limited: %v %v", r, err)
	}
	waitUntil(t, 10*time.Second, "the bucket to refill", func() bool { return get(readSecret).StatusCode == http.StatusNotFound })
}

// TestRateLimiterTableBounded: the limiter's table never holds more than
// its bound, drops clients whose buckets have refilled, and shares one
// bucket among the clients it cannot hold.
func TestRateLimiterTableBounded(t *testing.T) {
	const maxClients = 64
	l := newRateLimiter(10, 10, maxClients)
	now := time.Unix(1e9, 0)
	for i := range 10 * maxClients {
		key := rateKey{name: fmt.Sprint("client-", i)}
		for range 3 {
			l.allow(key, now)
		}
		if n := l.clients(); n > maxClients {
			t.Fatalf("after %d clients the table holds %d, more than %d", i+1, n, maxClients)
		}
	}
	if n := l.clients(); n < maxClients/2 {
		t.Fatalf("the table holds %d busy clients, want it about full (%d)", n, maxClients)
	}
	// A second later every bucket has refilled: the next new client
	// sweeps its shard, and all shards empty as clients arrive.
	later := now.Add(rateSweepEvery + time.Second)
	for i := range 4 * maxClients {
		l.allow(rateKey{name: fmt.Sprint("new-", i)}, later)
	}
	later = later.Add(rateSweepEvery + time.Second)
	for i := range rateShards * 4 {
		l.allow(rateKey{name: fmt.Sprint("probe-", i)}, later)
	}
	if n := l.clients(); n > rateShards*4 {
		t.Fatalf("idle clients were not dropped: %d left", n)
	}
	// A client whose bucket is empty is not dropped by a sweep.
	busy := rateKey{name: "busy"}
	for {
		if ok, _ := l.allow(busy, later); !ok {
			break
		}
	}
	for i := range l.shards {
		l.sweep(&l.shards[i], later)
	}
	if ok, retry := l.allow(busy, later); ok || retry != 1 {
		t.Fatalf("a limited client was let through after a sweep (retry %d)", retry)
	}
}

func TestClientIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5000":             "192.0.2.7",
		"[::ffff:192.0.2.7]:5000":    "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::",
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::",
		"not an address":             "invalid IP",
		"[fe80::1%eth0]:1":           "fe80::",
	} {
		if got := clientIP(in).String(); got != want {
			t.Errorf("clientIP(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestConnLimit: past --max-conns a connection is answered 503 with
// Retry-After and closed, the refusal is counted, and once a connection
// closes the next is served.
func TestConnLimit(t *testing.T) {
	const maxConns = 4
	ls := startLive(t, nil, ListenerConfig{MaxConns: maxConns})
	// Hold maxConns keep-alive connections, each having been served.
	var held []net.Conn
	for range maxConns {
		c := rawRequest(t, ls.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := readAnswer(t, c, 10*time.Second); resp.StatusCode != http.StatusOK {
			t.Fatalf("held connection: %d", resp.StatusCode)
		}
		held = append(held, c)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(ls.url + "/healthz")
	if err != nil {
		t.Fatalf("past the limit: %v, want a 503 answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("past the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	wantCode(t, body, CodeUnavailable)
	if got := metric(t, ls.reg, "disperse_http_connections_refused_total", ""); got < 1 {
		t.Fatalf("refusals counted %v", got)
	}
	if got := metric(t, ls.reg, "disperse_http_connections_open", ""); got != maxConns {
		t.Fatalf("open connections %v, want %d", got, maxConns)
	}
	held[0].Close()
	waitUntil(t, 10*time.Second, "a connection to be served again", func() bool {
		resp, err := client.Get(ls.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestConnLimitHalfCloses: the refusal's answer is followed by the end of
// the stream at once, while the client still has its side open, so a
// client that reads to the end is not left waiting for the drain's timeout.
func TestConnLimitHalfCloses(t *testing.T) {
	ls := startLive(t, nil, ListenerConfig{MaxConns: 1})
	held := rawRequest(t, ls.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, held, 10*time.Second)
	c := rawRequest(t, ls.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(refuseTimeout / 2))
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the refusal to its end: %v (got %q); want the end of the stream before the drain's %s", err, all, refuseTimeout)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(all)), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refusal %q: %v", all, err)
	}
}

// TestConnLimitManyRefusals: a burst of connections far past the limit
// gets answers or closes, never a hang, and the node serves again after.
func TestConnLimitManyRefusals(t *testing.T) {
	ls := startLive(t, nil, ListenerConfig{MaxConns: 2})
	held := rawRequest(t, ls.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, held, 10*time.Second)
	held2 := rawRequest(t, ls.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, held2, 10*time.Second)
	var wg sync.WaitGroup
	for range 4 * maxRefusing {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", ls.addr, 10*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * refuseTimeout))
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("past the limit: %d", resp.StatusCode)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("a refused connection hung: %v", err)
			}
		})
	}
	wg.Wait()
	held.Close()
	held2.Close()
	waitUntil(t, 10*time.Second, "service after the burst", func() bool {
		resp, err := http.Get(ls.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
