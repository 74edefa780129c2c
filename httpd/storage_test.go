package httpd

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
	"github.com/prometheus/client_golang/prometheus"
)

// realNode is a Server over a real engine and single cluster node, which a
// test can stop and open again on the same directory.
type realNode struct {
	s    *Server
	eng  *engine.Engine
	node *cluster.Node
}

func openRealNode(t testing.TB, ecfg engine.Config) *realNode {
	t.Helper()
	eng, err := engine.Open(ecfg)
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	ccfg := cluster.DefaultConfig()
	ccfg.Name = "httpd-test"
	ccfg.GossipPort = 0
	ccfg.LeaveTimeout = 100 * time.Millisecond
	node, err := cluster.New(ccfg, eng)
	if err != nil {
		_ = eng.Close()
		t.Fatalf("cluster.New: %v", err)
	}
	s, err := New(Config{Cache: node, Members: node, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	n := &realNode{s: s, eng: eng, node: node}
	t.Cleanup(func() { n.close(t) })
	return n
}

// close stops the node and its engine; a second call does nothing.
func (n *realNode) close(t testing.TB) {
	t.Helper()
	if n.node == nil {
		return
	}
	if err := n.node.Close(); err != nil {
		t.Errorf("close node: %v", err)
	}
	if err := n.eng.Close(); err != nil {
		t.Errorf("close engine: %v", err)
	}
	n.node = nil
}

func (n *realNode) put(t testing.TB, target, value string) (int, string) {
	t.Helper()
	rec := do(t, n.s.Handler(), http.MethodPut, target, strings.NewReader(value), "Content-Type", "text/plain")
	return rec.Code, rec.Body.String()
}

func (n *realNode) get(t testing.TB, key string) (int, string, http.Header) {
	t.Helper()
	rec := do(t, n.s.Handler(), http.MethodGet, "/cache/"+key, nil)
	return rec.Code, rec.Body.String(), rec.Header()
}

// TestDiskFailure makes the log's disk fail under a real engine: writes
// and deletes answer 507 or 503 with their code, nothing changes in
// memory, reads keep working, and writes work again once the disk does.
func TestDiskFailure(t *testing.T) {
	fs := wal.NewFaultFS(nil)
	n := openRealNode(t, engine.Config{Dir: t.TempDir(), FS: fs})
	if code, body := n.put(t, "/cache/k", "v1"); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}

	faults := []struct {
		name   string
		set    func()
		status int
		code   string
	}{
		{"disk full", func() { fs.SetWriteError(syscall.ENOSPC) }, http.StatusInsufficientStorage, "disk_full"},
		{"write error", func() { fs.SetWriteError(syscall.EIO) }, http.StatusServiceUnavailable, "unavailable"},
		{"fsync error", func() { fs.SetSyncError(syscall.EIO) }, http.StatusServiceUnavailable, "unavailable"},
	}
	for _, f := range faults {
		f.set()
		code, body := n.put(t, "/cache/k", "v2-"+f.name)
		if code != f.status || !strings.Contains(body, `"code":"`+f.code+`"`) {
			t.Errorf("%s: PUT answered %d %s, want %d %s", f.name, code, body, f.status, f.code)
		}
		if code, body := n.put(t, "/cache/new-"+strings.ReplaceAll(f.name, " ", "-"), "x"); code != f.status {
			t.Errorf("%s: PUT of a new key answered %d %s", f.name, code, body)
		}
		rec := do(t, n.s.Handler(), http.MethodDelete, "/cache/k", nil)
		if rec.Code != f.status {
			t.Errorf("%s: DELETE answered %d %s, want %d", f.name, rec.Code, rec.Body, f.status)
		}
		if code, body, _ := n.get(t, "k"); code != http.StatusOK || body != "v1" {
			t.Errorf("%s: GET after the failed writes = %d %q, want 200 \"v1\"", f.name, code, body)
		}
		fs.Clear()
	}
	if st := n.eng.Stats(); st.Keys != 1 {
		t.Errorf("engine holds %d keys after failed writes, want 1", st.Keys)
	}
	if code, body := n.put(t, "/cache/k", "v3"); code != http.StatusOK {
		t.Fatalf("PUT after the disk recovered: %d %s", code, body)
	}
	if code, body, _ := n.get(t, "k"); code != http.StatusOK || body != "v3" {
		t.Fatalf("GET = %d %q, want 200 \"v3\"", code, body)
	}
}

// TestExpiryThroughRestart: a key with a 1 s TTL answers 404 once it has
// passed, is reclaimed without anyone reading it and stays expired across a
// restart; a key with a long TTL keeps its exact expiry.
func TestExpiryThroughRestart(t *testing.T) {
	dir := t.TempDir()
	n := openRealNode(t, engine.Config{Dir: dir})
	if code, body := n.put(t, "/cache/short?ttl=1s", "gone soon"); code != http.StatusOK {
		t.Fatalf("PUT short: %d %s", code, body)
	}
	if code, body := n.put(t, "/cache/long?ttl=1h", "stays"); code != http.StatusOK {
		t.Fatalf("PUT long: %d %s", code, body)
	}
	_, _, h := n.get(t, "long")
	longExpiry := h.Get("X-Expires-At")
	if longExpiry == "" {
		t.Fatal("no X-Expires-At on a key with a TTL")
	}

	deadline := time.Now().Add(10 * time.Second)
	for n.eng.Stats().Keys != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the expired key was not reclaimed without a read: %+v", n.eng.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, _ := n.get(t, "short"); code != http.StatusNotFound {
		t.Fatalf("GET of an expired key = %d, want 404", code)
	}

	n.close(t)
	n = openRealNode(t, engine.Config{Dir: dir})
	if code, _, _ := n.get(t, "short"); code != http.StatusNotFound {
		t.Fatalf("after restart, GET of the expired key = %d, want 404", code)
	}
	code, body, h := n.get(t, "long")
	if code != http.StatusOK || body != "stays" || h.Get("X-Expires-At") != longExpiry {
		t.Fatalf("after restart long = %d %q expires %q, want 200 \"stays\" expires %q", code, body, h.Get("X-Expires-At"), longExpiry)
	}
}
