package blob

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// repairAll runs one repair pass on every node that is live.
func (c *testCluster) repairAll() {
	c.t.Helper()
	live := c.liveNames()
	for _, nd := range c.nodes {
		if live[nd.name] {
			if err := nd.store.RepairOnce(context.Background()); err != nil {
				c.t.Fatalf("repair on %s: %v", nd.name, err)
			}
		}
	}
}

func (c *testCluster) liveNames() map[string]bool {
	out := map[string]bool{}
	for _, p := range c.members.Member("x").Live() {
		out[p.Name] = true
	}
	return out
}

// distinct counts the distinct holders of m.
func distinct(m Manifest) int {
	seen := map[string]bool{}
	for _, sh := range m.Shards {
		seen[sh.Node] = true
	}
	return len(seen)
}

// A blob written while two of six nodes were down spreads onto them when
// they return, at the next repair pass: six distinct holders, tolerates 2;
// then two other holders are lost and the blob reads back whole.
func TestUnderReplicatedBlobSpreadsOntoReturningNodes(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	c.stop(c.nodes[4], true)
	c.stop(c.nodes[5], true)
	data := randomBytes(6*testStripe+321, 50)
	m := mustPut(t, c.nodes[0].store, "spread", data, PutOptions{})
	if m.Tolerates >= 2 || distinct(m) != 4 {
		t.Fatalf("written on four nodes: %+v", m)
	}
	c.start(c.nodes[4])
	c.start(c.nodes[5])
	c.repairAll()
	cur, err := c.nodes[1].store.Manifest(context.Background(), "spread")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Tolerates != 2 || distinct(cur) != 6 || cur.Health != HealthHealthy {
		t.Fatalf("after the pass: %+v", cur)
	}
	// The moved shards are gone from their old holders: six shard files.
	waitFor(t, 5*time.Second, "six shard files", func() bool { return len(c.shardFiles()) == 6 })
	reader := c.node(cur.Shards[0].Node)
	lost := 0
	for _, sh := range cur.Shards[1:] {
		if lost < 2 {
			c.stop(c.node(sh.Node), true)
			lost++
		}
	}
	if got := readAll(t, reader.store, "spread"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ after losing two holders")
	}
}

// The repair pass runs every RebuildAfter/4 (within 1s..1m) unless set.
func TestRepairIntervalFollowsRebuildAfter(t *testing.T) {
	for _, c := range []struct{ rebuild, want time.Duration }{
		{0, time.Minute}, {5 * time.Second, 1250 * time.Millisecond}, {time.Second, time.Second}, {time.Hour, time.Minute},
	} {
		cfg := Config{RebuildAfter: c.rebuild}.withDefaults()
		if cfg.RepairInterval != c.want {
			t.Errorf("RebuildAfter %v: repair interval %v, want %v", c.rebuild, cfg.RepairInterval, c.want)
		}
	}
}

// One holder's shard files are removed while it runs: the manifest's
// health says so at once, reads rebuild from parity, the scrubber finds
// the loss and rebuilds the shards in place, and then health is back to
// ok and reads stop reconstructing. A block that rots is rewritten too.
func TestScrubberRebuildsLostShards(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(5*testStripe+7, 51)
	m := mustPut(t, c.nodes[0].store, "scrub", data, PutOptions{})
	victim := c.node(m.Shards[1].Node)
	reader := c.nodes[0].store
	if victim.store == reader {
		reader = c.nodes[1].store
	}
	if err := os.Remove(victim.shards.Path(m.ref(1))); err != nil {
		t.Fatal(err)
	}
	cur, err := reader.Manifest(context.Background(), "scrub")
	if err != nil || cur.Shards[1].Health != HealthMissing || cur.Health != HealthDegraded || cur.Tolerates != 1 {
		t.Fatalf("after removal: %+v, err %v", cur, err)
	}
	before := counterValue(t, reader.met.reconstructed)
	if got := readAll(t, reader, "scrub"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	if counterValue(t, reader.met.reconstructed) == before {
		t.Fatal("read did not reconstruct a missing data shard")
	}
	if err := victim.store.ScrubOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if counterValue(t, victim.store.met.scrubPasses) != 1 || counterValue(t, victim.store.met.scrubProgress) != 1 {
		t.Fatal("scrub pass not counted")
	}
	cur, err = reader.Manifest(context.Background(), "scrub")
	if err != nil || cur.Health != HealthHealthy || cur.Tolerates != 2 {
		t.Fatalf("after the scrub: %+v, err %v", cur, err)
	}
	before = counterValue(t, reader.met.reconstructed)
	if got := readAll(t, reader, "scrub"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ after the rebuild")
	}
	if counterValue(t, reader.met.reconstructed) != before {
		t.Fatal("reads still reconstruct after the rebuild")
	}
	// A rotten block is found and rewritten in place.
	flipByte(t, victim.shards, m.ref(1), 3, 100)
	if err := victim.store.ScrubOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := verifyShardFile(victim.shards, m.ref(1), blockLens(&m)); err != nil {
		t.Fatalf("after the scrub: %v", err)
	}
	if counterValue(t, victim.store.met.repairedBlock) != 1 {
		t.Fatal("rewritten block not counted")
	}
}

func blockLens(m *Manifest) []int {
	out := make([]int, m.Stripes())
	for b := range out {
		out[b] = m.blockLen(b)
	}
	return out
}

// With the background loops on, a holder whose shard files are all lost
// (a disk swapped) gets them back without anyone asking.
func TestLostShardsHealOnTheirOwn(t *testing.T) {
	c := newTestCluster(t, 6, func(cfg *Config) {
		cfg.RepairInterval = 50 * time.Millisecond
		cfg.ScrubInterval = 50 * time.Millisecond
	})
	var ms []Manifest
	for i := range 3 {
		ms = append(ms, mustPut(t, c.nodes[i].store, "own-"+string(rune('a'+i)), randomBytes(2*testStripe+i, uint64(60+i)), PutOptions{}))
	}
	victim := c.nodes[2]
	ents, _ := os.ReadDir(victim.shards.Dir())
	for _, e := range ents {
		_ = os.Remove(victim.shards.Dir() + "/" + e.Name())
	}
	waitFor(t, 10*time.Second, "the lost shards back", func() bool {
		for _, m := range ms {
			for i, sh := range m.Shards {
				if sh.Node == victim.name {
					if _, err := victim.shards.Stat(m.ref(i)); err != nil {
						return false
					}
				}
			}
		}
		return true
	})
}

// A repair paused between reading the manifest and writing it back while
// a PUT of the same id is acknowledged loses: the PUT's bytes come back
// everywhere, and the repair removes the shard it rebuilt.
func TestRepairNeverOverwritesConcurrentPut(t *testing.T) {
	c := newTestCluster(t, 7, nil)
	old := mustPut(t, c.nodes[0].store, "race", randomBytes(3*testStripe, 52), PutOptions{})
	gone := c.node(old.Shards[2].Node)
	c.stop(gone, true)
	c.repairAll() // notes the absence
	c.clock.Advance(DefaultRebuildAfter + time.Second)
	var leader *testNode
	live := c.nodes[0].store.liveMap()
	for _, nd := range c.nodes {
		if nd != gone && nd.store.leads("race", live) {
			leader = nd
		}
	}
	reached, resume := make(chan struct{}), make(chan struct{})
	leader.store.beforeRecord = func(string) {
		close(reached)
		<-resume
	}
	repaired := make(chan error, 1)
	go func() { repaired <- leader.store.RepairOnce(context.Background()) }()
	<-reached
	// The repair has rebuilt shard 2 somewhere and waits; a PUT comes.
	data := randomBytes(2*testStripe+99, 53)
	writer := c.nodes[0]
	if writer == gone || writer == leader {
		writer = c.nodes[1]
	}
	if writer == gone || writer == leader {
		writer = c.nodes[3]
	}
	cur := mustPut(t, writer.store, "race", data, PutOptions{})
	close(resume)
	if err := <-repaired; err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		if nd == gone {
			continue
		}
		got := readAll(t, nd.store, "race")
		if !bytes.Equal(got, data) {
			t.Fatalf("%s reads the repaired old blob, not the acknowledged PUT", nd.name)
		}
	}
	m, err := c.nodes[0].store.Lookup(context.Background(), "race")
	if err != nil || m.Generation != cur.Generation {
		t.Fatalf("manifest %+v, err %v", m, err)
	}
	// Nothing of the old generation is left but on the absent holder: the
	// PUT removed its shards and the losing repair the one it rebuilt.
	waitFor(t, 5*time.Second, "old generation gone", func() bool {
		for _, f := range c.shardFiles() {
			if strings.Contains(f, genHex(old.Generation)) && !strings.HasPrefix(f, gone.name+"/") {
				return false
			}
		}
		return true
	})
}

func genHex(g uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = digits[g&15]
		g >>= 4
	}
	return string(b)
}

// The scrubber keeps to its rate: 256 KiB at 1 MiB/s take a quarter of a
// second at least.
func TestScrubRateLimit(t *testing.T) {
	lim := newLimiter(1 << 20)
	start := time.Now()
	for range 64 {
		if err := lim.wait(context.Background(), 4<<10); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 240*time.Millisecond {
		t.Fatalf("256 KiB at 1 MiB/s took %v", took)
	}
}
