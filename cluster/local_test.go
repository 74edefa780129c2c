package cluster

import (
	"context"
	"fmt"
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

// waitRounds waits until every running node has merged at least k more
// anti-entropy states.
func (c *testCluster) waitRounds(k float64) {
	c.t.Helper()
	start := map[*Node]float64{}
	for _, tn := range c.running() {
		start[tn.node] = counterValue(c.t, tn.node.metrics.aeRounds)
	}
	waitFor(c.t, 10*time.Second, "anti-entropy rounds", func() bool {
		for n, v := range start {
			if counterValue(c.t, n.metrics.aeRounds) < v+k {
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

func TestTombstoneRuleDropsOldEntryForAbsentKey(t *testing.T) {
	ttl := time.Minute
	c := newTestCluster(t, 1, func(cfg *Config, ecfg *engine.Config) {
		cfg.TombstoneTTL = ttl
		ecfg.TombstoneTTL = ttl
	})
	n := c.nodes[0].node
	now := time.Now()
	// A key the node never held (or whose tombstone it collected): an
	// entry older than the TTL must not bring it back.
	ghost := engine.Entry{Key: "ghost", Value: []byte("old"), Version: oldVersion(now, 2*ttl)}
	n.receive(encodeBatch(msgRepair, []engine.Entry{ghost}))
	if _, ok := n.Get("ghost"); ok {
		t.Fatal("an entry older than the tombstone TTL revived an absent key")
	}
	if got := counterValue(t, n.metrics.entriesStale); got != 1 {
		t.Fatalf("stale entries counted = %v, want 1", got)
	}

	// A key the node holds: the old entry is ordinary last-writer-wins.
	held := engine.Entry{Key: "held", Value: []byte("older"), Version: oldVersion(now, 3*ttl)}
	if _, err := c.nodes[0].eng.Apply(held); err != nil {
		t.Fatal(err)
	}
	newer := engine.Entry{Key: "held", Value: []byte("newer"), Version: oldVersion(now, 2*ttl)}
	n.receive(encodeBatch(msgBatch, []engine.Entry{newer}))
	if e, _ := n.Get("held"); string(e.Value) != "newer" {
		t.Fatalf("held key = %q, want the newer replicated value", e.Value)
	}

	// A recent entry for an absent key is applied.
	fresh := engine.Entry{Key: "fresh", Value: []byte("v"), Version: oldVersion(now, ttl/2)}
	n.receive(encodeBatch(msgBatch, []engine.Entry{fresh}))
	if _, ok := n.Get("fresh"); !ok {
		t.Fatal("a recent replicated entry was dropped")
	}
}

func TestCollectedTombstoneDoesNotReviveValue(t *testing.T) {
	ttl := 300 * time.Millisecond
	c := newTestCluster(t, 2, func(cfg *Config, ecfg *engine.Config) {
		cfg.TombstoneTTL = ttl
		ecfg.TombstoneTTL = ttl
	})
	n0, n1 := c.nodes[0], c.nodes[1]
	put(t, n0.node, "victim", "old")
	c.waitValue(5*time.Second, "victim", []byte("old"))

	c.faults.Partition([]string{n0.name}, []string{n1.name})
	del(t, n1.node, "victim")
	waitFor(t, 15*time.Second, "the tombstone to be collected", func() bool {
		return n1.eng.Stats().Tombstones == 0
	})
	c.faults.Heal()
	c.waitAlive(10*time.Second, c.names()...)
	c.waitRounds(3)
	waitFor(t, 5*time.Second, "the old value to reach node-1 and be dropped", func() bool {
		return counterValue(t, n1.node.metrics.entriesStale) > 0
	})
	if e, ok := n1.node.Get("victim"); ok {
		t.Fatalf("a collected tombstone let the old value back: %q", e.Value)
	}
}

func TestAntiEntropyCapStillConverges(t *testing.T) {
	c := newTestCluster(t, 2, func(cfg *Config, _ *engine.Config) {
		cfg.AntiEntropyMaxBytes = 8 << 10
	})
	c.faults.Partition([]string{"node-0"}, []string{"node-1"})
	for i := range 300 {
		put(t, c.nodes[i%2].node, fmt.Sprintf("k-%d", i), "v")
	}
	c.faults.Heal()
	c.waitConverged(20 * time.Second)
	for i := range 300 {
		c.waitValue(time.Second, fmt.Sprintf("k-%d", i), []byte("v"))
	}
}

func TestJoinRetriedInBackground(t *testing.T) {
	start := func(name string, port int, join ...string) *Node {
		t.Helper()
		eng, err := engine.Open(engine.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(name)
		cfg.GossipPort = port
		cfg.Join = join
		n, err := New(cfg, eng)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = n.Close()
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
	put(t, late, "k", "v")
	seed := start("seed", seedPort)
	waitFor(t, 10*time.Second, "late to join seed", func() bool {
		ms := seed.Members()
		return len(ms) == 2 && ms[0].State == StateAlive && ms[1].State == StateAlive
	})
	waitFor(t, 5*time.Second, "k to reach the seed", func() bool {
		_, ok := seed.Get("k")
		return ok
	})
}
