package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
)

// testConfig is a node on free loopback ports over a fresh data directory.
func testConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := parseServe([]string{"--name", "test", "--http-port", "0", "--gossip-port", "0", "--resp-port", "0",
		"--data-dir", t.TempDir(), "--log-level", "warn"}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRunPortInUse: a taken port stops the start with a line naming it.
func TestRunPortInUse(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(cfg *Config, port int)
	}{
		{"http", func(cfg *Config, port int) { cfg.HTTPPort = port }},
		{"gossip", func(cfg *Config, port int) { cfg.GossipPort = port }},
		{"resp", func(cfg *Config, port int) { cfg.RESPPort = port }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cfg := testConfig(t)
			port := ln.Addr().(*net.TCPAddr).Port
			tc.set(&cfg, port)
			err = run(context.Background(), cfg, io.Discard)
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("run: %v, want EADDRINUSE", err)
			}
			if want := fmt.Sprintf("%s port %d: address already in use", tc.name, port); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestRunDataDirNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(file, "data")
	err := run(context.Background(), cfg, io.Discard)
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("run: %v, want ENOTDIR", err)
	}
	if want := "data dir " + cfg.DataDir + ": not a directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestRunServesAndStops runs a node in-process: it answers the API once
// ready, a second node on the same directory fails as locked, and cancelling
// the context stops it cleanly with its data kept for the next start.
func TestRunServesAndStops(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = slog.LevelInfo
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &logs) }()
	base := waitListening(t, &logs)
	waitFor(t, 10*time.Second, "/readyz", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, err := httpPut(http.DefaultClient, base+"/cache/a/b", "hello"); err != nil || code != http.StatusOK {
		t.Fatalf("PUT: %d %v", code, err)
	}

	second := cfg
	second.HTTPPort, second.GossipPort = 0, 0
	err := run(context.Background(), second, io.Discard)
	if !errors.Is(err, engine.ErrLocked) || err.Error() != "data dir "+cfg.DataDir+": locked by another running node" {
		t.Errorf("second node on the same dir: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no stopped line:\n%s", logs.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still answering after stop")
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	logs = syncBuffer{}
	go func() { done <- run(ctx, cfg, &logs) }()
	base = waitListening(t, &logs)
	waitFor(t, 10*time.Second, "the key after restart", func() bool {
		code, body, err := httpGet(http.DefaultClient, base+"/cache/a/b")
		return err == nil && code == http.StatusOK && body == "hello"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitListening reads the API's address from the node's "listening" line.
func waitListening(t testing.TB, logs *syncBuffer) string {
	t.Helper()
	var addr string
	waitFor(t, 10*time.Second, "the listening line", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "msg=listening") {
				_, rest, _ := strings.Cut(l, "http=")
				addr, _, _ = strings.Cut(rest, " ")
				return true
			}
		}
		return false
	})
	return "http://" + addr
}

func TestSwitchHandlerWhileRecovering(t *testing.T) {
	h := newSwitchHandler()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/cache/x": 503} {
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, mustRequest(t, path))
		if rec.code != want {
			t.Errorf("%s while recovering: %d, want %d", path, rec.code, want)
		}
	}
	h.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, mustRequest(t, "/readyz"))
	if rec.code != http.StatusTeapot {
		t.Errorf("after set: %d", rec.code)
	}
}

func mustRequest(t testing.TB, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// startInProcess runs a node in this process until the test ends and
// returns its base URL once it is ready.
func startInProcess(t testing.TB, cfg Config) string {
	t.Helper()
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	base := waitListening(t, &logs)
	waitFor(t, 10*time.Second, "/readyz", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func TestClientCommands(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = slog.LevelInfo
	base := startInProcess(t, cfg)
	cli := func(stdin string, args ...string) (string, int) {
		var out, errs bytes.Buffer
		code := mainArgs(append(args, "--addr", base), strings.NewReader(stdin), &out, &errs)
		return out.String() + errs.String(), code
	}
	if out, code := cli("", "put", "dir/k", "hello", "--ttl", "1h", "--json"); code != 0 || !strings.Contains(out, `"key":"dir/k"`) {
		t.Fatalf("put: %d %s", code, out)
	}
	if out, code := cli("from stdin", "put", "k2", "-"); code != 0 {
		t.Fatalf("put -: %d %s", code, out)
	}
	if out, code := cli("", "get", "dir/k"); code != 0 || out != "hello" {
		t.Fatalf("get: %d %q", code, out)
	}
	if out, code := cli("", "get", "k2"); code != 0 || out != "from stdin" {
		t.Fatalf("get k2: %d %q", code, out)
	}
	if out, code := cli("", "del", "dir/k"); code != 0 {
		t.Fatalf("del: %d %s", code, out)
	}
	if out, code := cli("", "get", "dir/k"); code != 1 || !strings.Contains(out, "404") {
		t.Fatalf("get after del: %d %q", code, out)
	}
	if out, code := cli("", "members", "--json"); code != 0 || !strings.Contains(out, `"name":"test"`) {
		t.Fatalf("members: %d %s", code, out)
	}
	if out, code := cli("", "ready"); code != 0 {
		t.Fatalf("ready on a recovered node: %d %s", code, out)
	}
	if out, code := cli("", "put", "--sync", "mine", "local", "--json"); code != 0 || !strings.Contains(out, `"key":"mine"`) {
		t.Fatalf("put --sync: %d %s", code, out)
	}
}

// TestClientReadyTimesOut: `disperse ready` fails, naming the address, when
// nothing answers there before its timeout.
func TestClientReadyTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	var out, errs bytes.Buffer
	code := mainArgs([]string{"ready", "--addr", addr, "--timeout", "300ms"}, strings.NewReader(""), &out, &errs)
	if code != 1 || !strings.Contains(errs.String(), addr+" not ready after 300ms") {
		t.Fatalf("ready against nothing: exit %d, %q", code, errs.String())
	}
}

// TestBlobRoundTrip: the node serves /blob with its blob store wired to the
// cluster node (manifests in the catalog, shards under the data dir).
func TestBlobRoundTrip(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = slog.LevelInfo
	base := startInProcess(t, cfg)
	data := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16+7) // not a multiple of any block size
	req, err := http.NewRequest(http.MethodPut, base+"/blob/photo.jpg?data=2&parity=1", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"id":"photo.jpg"`) {
		t.Fatalf("PUT /blob: %d %s", resp.StatusCode, body)
	}
	code, got, err := httpGet(http.DefaultClient, base+"/blob/photo.jpg")
	if err != nil || code != http.StatusOK || got != string(data) {
		t.Fatalf("GET /blob: %d, %d bytes, %v", code, len(got), err)
	}
	if code, body, _ := httpGet(http.DefaultClient, base+"/blob"); code != http.StatusOK || !strings.Contains(body, "photo.jpg") {
		t.Errorf("GET /blob: %d %s", code, body)
	}
	if code, body, _ := httpGet(http.DefaultClient, base+"/cache"); code != http.StatusOK || strings.Contains(body, "photo") {
		t.Errorf("the manifest shows in /cache: %d %s", code, body)
	}
	entries, err := os.ReadDir(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil || len(entries) == 0 {
		t.Errorf("no shard files under the data dir: %v", err)
	}
	req, _ = http.NewRequest(http.MethodDelete, base+"/blob/photo.jpg", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /blob: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _, _ := httpGet(http.DefaultClient, base+"/blob/photo.jpg"); code != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", code)
	}
}

// TestTwoNodes: a node started with --join finds the first, writes reach
// both, each advertises its HTTP address, and a blob's shards spread over
// both nodes can be read from either.
func TestTwoNodes(t *testing.T) {
	a := testConfig(t)
	a.Name, a.GossipPort, a.LogLevel = "a", freePort(t), slog.LevelInfo
	b := testConfig(t)
	b.Name, b.GossipPort, b.LogLevel = "b", freePort(t), slog.LevelInfo
	b.Join = []string{fmt.Sprintf("127.0.0.1:%d", a.GossipPort)}
	ua, ub := startInProcess(t, a), startInProcess(t, b)

	waitFor(t, 20*time.Second, "both members alive with their HTTP address", func() bool {
		_, body, _ := httpGet(http.DefaultClient, ub+"/cluster/members")
		return strings.Count(body, `"state":"alive"`) == 2 &&
			strings.Contains(body, strings.TrimPrefix(ua, "http://")) &&
			strings.Contains(body, strings.TrimPrefix(ub, "http://"))
	})
	if code, err := httpPut(http.DefaultClient, ua+"/cache/shared", "from a"); err != nil || code != http.StatusOK {
		t.Fatalf("PUT: %d %v", code, err)
	}
	waitFor(t, 20*time.Second, "the write on b", func() bool {
		code, body, _ := httpGet(http.DefaultClient, ub+"/cache/shared")
		return code == http.StatusOK && body == "from a"
	})

	data := strings.Repeat("blob bytes ", 10000)
	req, _ := http.NewRequest(http.MethodPut, ua+"/blob/two?data=1&parity=1", strings.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"tolerates":1`) {
		t.Fatalf("PUT /blob: %d %s", resp.StatusCode, body)
	}
	waitFor(t, 20*time.Second, "the blob from b", func() bool {
		code, got, _ := httpGet(http.DefaultClient, ub+"/blob/two")
		return code == http.StatusOK && got == data
	})
}

// TestStopFinishesInFlightRequests: a blob upload under way when the node is
// told to stop (SIGTERM cancels run's context) is finished and answered 201
// before the node stops, and the blob is there after a restart.
func TestStopFinishesInFlightRequests(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = slog.LevelInfo
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &logs) }()
	base := waitListening(t, &logs)
	waitFor(t, 10*time.Second, "/readyz", func() bool {
		code, _, err := httpGet(http.DefaultClient, base+"/readyz")
		return err == nil && code == http.StatusOK
	})

	pr, pw := io.Pipe()
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, base+"/blob/slow?data=1&parity=0", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	chunk := bytes.Repeat([]byte("s"), 1<<20)
	for range 3 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// A shard file on disk proves the handler is streaming the upload.
	waitFor(t, 10*time.Second, "a shard file of the upload", func() bool {
		entries, _ := os.ReadDir(filepath.Join(cfg.DataDir, "blobs"))
		return len(entries) > 0
	})
	cancel()
	waitFor(t, 10*time.Second, "the stopping line", func() bool { return strings.Contains(logs.String(), "msg=stopping") })
	if _, err := pw.Write(chunk); err != nil {
		t.Fatalf("the upload was cut when the node began to stop: %v", err)
	}
	pw.Close()
	if code := <-answered; code != http.StatusCreated {
		t.Fatalf("upload in flight at stop: status %d, want 201", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	base = startInProcess(t, cfg)
	code, body, err := httpGet(http.DefaultClient, base+"/blob/slow")
	if err != nil || code != http.StatusOK || len(body) != 4<<20 {
		t.Fatalf("blob after restart: %d, %d bytes, %v", code, len(body), err)
	}
}

// A duration reads the same in both log formats: seconds, as a number,
// under its key with "_seconds" added.
func TestLogDurationsInSeconds(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log := newLogger(Config{LogLevel: slog.LevelInfo, LogFormat: format}, &buf)
		log.Info("synced", "took", 45920*time.Microsecond, slog.Group("g", slog.Duration("wait", 1500*time.Millisecond)))
		want := map[string][]string{
			"text": {"took_seconds=0.04592", "g.wait_seconds=1.5"},
			"json": {`"took_seconds":0.04592`, `"g":{"wait_seconds":1.5}`},
		}[format]
		for _, w := range want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s log %q lacks %s", format, buf.String(), w)
			}
		}
	}
}
