package cluster

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// syncsDone counts the node's completed syncs.
func syncsDone(t testing.TB, n *Node) float64 {
	return counterValue(t, n.metrics.syncs.WithLabelValues("ok"))
}

// waitRounds waits until every running node has completed at least k more
// syncs with a peer.
func (c *testCluster) waitRounds(k float64) {
	c.t.Helper()
	start := map[*Node]float64{}
	for _, tn := range c.running() {
		start[tn.node] = syncsDone(c.t, tn.node)
	}
	waitFor(c.t, 10*time.Second, "syncs", func() bool {
		for n, v := range start {
			if syncsDone(c.t, n) < v+k {
				return false
			}
		}
		return true
	})
}

func TestLocalWriteStaysLocal(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	n0 := c.nodes[0].node
	if _, err := n0.Put(context.Background(), Write{Key: "sync", Value: []byte("mine"), Local: true}); err != nil {
		t.Fatal(err)
	}
	put(t, n0, "marker", "m")
	c.waitValue(5*time.Second, "marker", []byte("m"))
	c.waitRounds(3)
	c.waitConverged(5 * time.Second)
	if _, ok := c.nodes[1].node.Get("sync"); ok {
		t.Fatal("a local write reached a peer")
	}
	if e, ok := n0.Get("sync"); !ok || string(e.Value) != "mine" {
		t.Fatalf("local write lost on its node after anti-entropy: %q %v", e.Value, ok)
	}

	c.stop(0)
	c.start(0)
	c.waitAlive(5*time.Second, c.names()...)
	c.waitRounds(2)
	if e, ok := c.nodes[0].node.Get("sync"); !ok || string(e.Value) != "mine" {
		t.Fatalf("local write lost across a restart: %q %v", e.Value, ok)
	}
	if _, ok := c.nodes[1].node.Get("sync"); ok {
		t.Fatal("a local write reached a peer after a restart")
	}

	put(t, c.nodes[1].node, "sync", "cluster")
	c.waitValue(5*time.Second, "sync", []byte("cluster"))
}

// oldVersion is a version whose wall time is age ago.
func oldVersion(now time.Time, age time.Duration) engine.Version {
	return engine.Version{Time: uint64(now.Add(-age).UnixMilli()) << counterBits, Node: 7}
}

func TestJoinRetriedInBackground(t *testing.T) {
	start := func(name string, port int, join ...string) *Node {
		t.Helper()
		dir := t.TempDir()
		eng, err := engine.Open(engine.Config{Dir: filepath.Join(dir, "engine")})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(name)
		cfg.Dir = filepath.Join(dir, "cluster")
		cfg.GossipPort = port
		cfg.Join = join
		cfg.HTTPAddr = ln.Addr().String()
		n, err := New(cfg, eng)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: n.Handler()}
		go srv.Serve(ln)
		t.Cleanup(func() {
			_ = n.Close()
			srv.Close()
			_ = eng.Close()
		})
		return n
	}
	// Find a free gossip port, then free it again.
	probe := start("probe", 0)
	seedAddr, seedPort := probe.GossipAddr(), probe.GossipPort()
	if err := probe.Close(); err != nil {
		t.Fatal(err)
	}

	late := start("late", 0, seedAddr) // the seed is not up: start anyway
	if ok, _ := late.Readiness(); ok {
		t.Fatal("a node with a peer to join is ready before any sync")
	}
	put(t, late, "k", "v")
	seed := start("seed", seedPort)
	if ok, reason := seed.Readiness(); !ok || reason != "no peers to sync with" {
		t.Fatalf("a new node without peers: ready %v (%s), want ready at once", ok, reason)
	}
	waitFor(t, 10*time.Second, "late to join seed", func() bool {
		ms := seed.Members()
		return len(ms) == 2 && ms[0].State == StateAlive && ms[1].State == StateAlive
	})
	waitFor(t, 5*time.Second, "k to reach the seed", func() bool {
		_, ok := seed.Get("k")
		return ok
	})
	waitFor(t, 5*time.Second, "late to be ready", func() bool {
		ok, reason := late.Readiness()
		return ok && reason == "synced with seed"
	})
}
