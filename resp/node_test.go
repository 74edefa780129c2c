package resp

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// testNode is a real node on loopback: an engine in a temporary directory,
// a cluster node and a Redis protocol server over it.
type testNode struct {
	eng  *engine.Engine
	node *cluster.Node
	srv  *Server
	addr string // the Redis protocol listener's host:port
	reg  *prometheus.Registry
}

// startNode starts a node; tune, if not nil, adjusts the server's config.
// join, if not empty, is a gossip address to join.
func startNode(t testing.TB, tune func(*Config), join ...string) *testNode {
	t.Helper()
	dir := t.TempDir()
	eng, err := engine.Open(engine.Config{Dir: filepath.Join(dir, "engine"), Sync: wal.SyncNever, SegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ccfg := cluster.DefaultConfig()
	ccfg.Name = filepath.Base(dir)
	ccfg.GossipPort = 0
	ccfg.ProbeInterval = 100 * time.Millisecond
	ccfg.ProbeTimeout = 50 * time.Millisecond
	ccfg.GossipInterval = 20 * time.Millisecond
	ccfg.LeaveTimeout = 200 * time.Millisecond
	ccfg.Join = join
	node, err := cluster.New(ccfg, eng)
	if err != nil {
		eng.Close()
		t.Fatal(err)
	}
	n := &testNode{eng: eng, node: node, reg: prometheus.NewRegistry()}
	cfg := Config{Registerer: n.reg, Keys: func() int { return eng.Stats().Keys }}
	if tune != nil {
		tune(&cfg)
	}
	n.srv, err = New(cfg, node)
	if err != nil {
		node.Close()
		eng.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- n.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("serve: %v", err)
		}
		node.Close()
		eng.Close()
	})
	return n
}

// client is a go-redis client of the node, closed when the test ends.
func (n *testNode) client(t testing.TB, tune ...func(*redis.Options)) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: n.addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1}
	for _, f := range tune {
		f(opts)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSmoke(t *testing.T) {
	n := startNode(t, nil)
	rdb := n.client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "a").Result(); err != nil || v != "1" {
		t.Fatalf("GET: %q %v", v, err)
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
