package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
)

// TestLocalWritesAboveVersionsBeyondTheClock: a store holding versions
// the clock cannot reach (written before the wall clock stepped back, say)
// still gets local writes above them, and above every key's newest version
// when the clock is ahead of them all. Entries go to the store directly,
// as a recovery would load them, not through the skew check.
func TestLocalWritesAboveVersionsBeyondTheClock(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	n := c.nodes[0].node
	later := engine.Version{Time: uint64(time.Now().Add(2*time.Hour).UnixMilli()) << counterBits, Node: 9}
	if _, err := n.store.ApplyBatch([]engine.Entry{{Key: "future", Value: []byte("old"), Version: later}}); err != nil {
		t.Fatal(err)
	}
	if n.store.AboveMax(n.clock.Version()) {
		t.Fatal("the store holds a version two hours ahead, yet the clock's reading is above its maximum")
	}
	for _, key := range []string{"future", "fresh"} {
		e, err := n.Put(context.Background(), Write{Key: key, Value: []byte("new")})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if got, _ := n.Get(key); string(got.Value) != "new" {
			t.Fatalf("%s = %q after a 200, want new", key, got.Value)
		}
		if key == "future" && e.Version.Compare(later) <= 0 {
			t.Fatalf("local write stamped %v, not above %v", e.Version, later)
		}
	}
	// Pipelined writes stamp the same way.
	ents, errs := n.PutBatch(context.Background(), []Write{{Key: "future", Value: []byte("batch")}, {Key: "other", Value: []byte("batch")}})
	for i := range ents {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got, _ := n.Get(ents[i].Key); string(got.Value) != "batch" {
			t.Fatalf("%s = %q after a batch, want batch", ents[i].Key, got.Value)
		}
	}
}

// shifted is a clock off the real one by d.
func shifted(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}

func TestPeerVersionsBeyondSkewAreRefused(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	n := c.nodes[0].node
	now := time.Now()
	ahead := func(d time.Duration) engine.Version {
		return engine.Version{Time: uint64(now.Add(d).UnixMilli()) << counterBits, Node: 9}
	}
	h := header{from: "peer", wallMS: now.UnixMilli()}
	n.applyRemote(h, []engine.Entry{
		{Key: "near", Value: []byte("peer"), Version: ahead(30 * time.Second)},
		{Key: "far", Value: []byte("peer"), Version: ahead(time.Hour)},
		{Key: "max", Value: []byte("peer"), Version: engine.Version{Time: math.MaxUint64, Node: math.MaxUint64}},
	}, false)
	if _, ok := n.Get("far"); ok {
		t.Fatal("an entry an hour ahead was applied")
	}
	if _, ok := n.Get("max"); ok {
		t.Fatal("an entry with the largest version was applied")
	}
	if got := counterValue(t, n.metrics.rejected.WithLabelValues("clock_skew")); got != 2 {
		t.Fatalf("refused for skew = %v, want 2", got)
	}
	if r := n.clock.Now(); r > ahead(time.Minute+time.Second).Time {
		t.Fatalf("the clock moved beyond the skew bound: %x", r)
	}

	// A local write of a key a peer wrote ahead of this clock (within the
	// skew) still takes effect, above the peer's version.
	e, err := n.Put(context.Background(), Write{Key: "near", Value: []byte("mine")})
	if err != nil {
		t.Fatal(err)
	}
	if e.Version.Compare(ahead(30*time.Second)) <= 0 {
		t.Fatalf("local write stamped %v, not above the peer's", e.Version)
	}
	if got, _ := n.Get("near"); string(got.Value) != "mine" {
		t.Fatalf("near = %q after a 200, want mine", got.Value)
	}
	if _, err := n.Delete(context.Background(), "near", false); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Get("near"); ok {
		t.Fatal("a delete answered but the key is still there")
	}
}

func TestSkewedClocksKeepWritesMeaningful(t *testing.T) {
	offsets := []time.Duration{0, time.Hour, -time.Hour}
	c := newTestCluster(t, 3, func(cfg *Config, ecfg *engine.Config) {
		var off time.Duration
		for i, o := range offsets {
			if cfg.Name == fmt.Sprintf("node-%d", i) {
				off = o
			}
		}
		cfg.Now, ecfg.Now = shifted(off), shifted(off)
	})
	ctx := context.Background()
	// Every node writes every key in turn, then deletes some: each write
	// must take effect on the node that answered, whatever the others did.
	for round := range 3 {
		for i, tn := range c.nodes {
			for k := range 5 {
				key := fmt.Sprintf("k%d", k)
				val := fmt.Sprintf("r%d-n%d", round, i)
				if _, err := tn.node.Put(ctx, Write{Key: key, Value: []byte(val)}); err != nil {
					t.Fatal(err)
				}
				if e, ok := tn.node.Get(key); !ok || string(e.Value) != val {
					t.Fatalf("%s: %s = %q after a 200, want %q", tn.name, key, e.Value, val)
				}
			}
			if _, err := tn.node.Delete(ctx, "k0", false); err != nil {
				t.Fatal(err)
			}
			if _, ok := tn.node.Get("k0"); ok {
				t.Fatalf("%s: k0 still there after a 204", tn.name)
			}
		}
	}
	// The node an hour ahead sends versions an hour ahead: refused.
	waitFor(t, 10*time.Second, "skewed entries to be refused", func() bool {
		return counterValue(t, c.nodes[0].node.metrics.rejected.WithLabelValues("clock_skew")) > 0
	})
}

func TestExpiredValueNeverComesBack(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	put(t, c.nodes[0].node, "k", "old")
	c.waitValue(5*time.Second, "k", []byte("old"))

	// node-2 misses the overwrite and its expiry.
	c.faults.Partition([]string{"node-2"}, []string{"node-0", "node-1"})
	exp := time.Now().Add(time.Second).UnixNano()
	if _, err := c.nodes[1].node.Put(context.Background(), Write{Key: "k", Value: []byte("new"), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the short-lived value to expire", func() bool {
		_, ok0 := c.nodes[0].node.Get("k")
		_, ok1 := c.nodes[1].node.Get("k")
		return !ok0 && !ok1
	})
	c.faults.Heal()
	c.waitAlive(15*time.Second, c.names()...)
	c.waitValue(10*time.Second, "k", nil)
	c.waitConverged(10 * time.Second)
	for i := range c.nodes {
		c.stop(i)
		c.start(i)
		c.waitAlive(10*time.Second, c.names()...)
		c.waitReady(10*time.Second, i)
		for _, tn := range c.running() {
			if e, ok := tn.node.Get("k"); ok {
				t.Fatalf("after restarting node-%d, %s serves %q again", i, tn.name, e.Value)
			}
		}
	}
	c.waitRounds(2)
	c.waitValue(time.Second, "k", nil)
}

func TestStaleNodeDoesNotBringBackDeletes(t *testing.T) {
	ttl := 2 * time.Second
	c := newTestCluster(t, 3, func(cfg *Config, ecfg *engine.Config) {
		cfg.TombstoneTTL, ecfg.TombstoneTTL = ttl, ttl
		cfg.AntiEntropyInterval = time.Hour // only joins sync
	})
	put(t, c.nodes[0].node, "victim", "v")
	put(t, c.nodes[0].node, "survivor", "v")
	c.waitValue(5*time.Second, "victim", []byte("v"))
	c.waitValue(5*time.Second, "survivor", []byte("v"))

	c.stop(2)
	stopped := time.Now()
	del(t, c.nodes[0].node, "victim")
	waitFor(t, 10*time.Second, "the tombstone to be collected", func() bool {
		for _, tn := range c.running() {
			if _, held := tn.eng.Head("victim"); held {
				return false
			}
		}
		return true
	})
	waitFor(t, 3*ttl, "node-2 to be away longer than the TTL", func() bool { return time.Since(stopped) > ttl+500*time.Millisecond })
	// With a TTL this short node-0 still keeps the delete among its recent
	// writes and would send it on; with the default TTL it is long gone.
	c.nodes[0].node.rep.forgetRecent()

	c.start(2)
	n2 := c.nodes[2].node
	if n2.fresh() {
		t.Fatal("a node away longer than the tombstone TTL counts as in sync")
	}
	c.waitReady(10*time.Second, 2)
	c.waitAlive(10*time.Second, c.names()...)
	waitFor(t, 10*time.Second, "node-2 to be in sync again", n2.fresh)
	c.waitValue(5*time.Second, "victim", nil)
	c.waitValue(time.Second, "survivor", []byte("v"))
	if got := counterValue(t, n2.metrics.purged); got < 1 {
		t.Fatalf("node-2 purged %v entries, want the deleted one", got)
	}
	// Nothing brings it back later either, nor across a restart.
	c.stop(2)
	c.start(2)
	if reason := c.waitReady(10*time.Second, 2); !strings.HasPrefix(reason, "synced") {
		t.Fatalf("node-2 ready without a sync: %s", reason)
	}
	c.waitValue(time.Second, "victim", nil)
}

func TestWipedDisksOneAtATimeLoseNothing(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	want := map[string]string{}
	write := func(i, round int) {
		for k := range 20 {
			key := fmt.Sprintf("r%d-k%d", round, k)
			put(t, c.nodes[i].node, key, key)
			want[key] = key
		}
	}
	write(0, 0)
	for i := range c.nodes {
		c.stop(i)
		c.wipe(i)
		c.start(i)
		if reason := c.waitReady(10*time.Second, i); !strings.HasPrefix(reason, "synced") {
			t.Fatalf("node-%d ready without a sync: %s", i, reason)
		}
		c.waitAlive(10*time.Second, c.names()...)
		write((i+1)%3, i+1)
	}
	for key, v := range want {
		c.waitValue(5*time.Second, key, []byte(v))
	}
}

func TestSeedRestartWithoutJoinKeepsOneCluster(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	for round := range 2 {
		for i := range c.nodes {
			c.stop(i)
			c.nodes[i].noJoin = true // it has only the peers it remembers
			c.start(i)
			c.waitAlive(10*time.Second, c.names()...)
			for j, tn := range c.nodes {
				key := fmt.Sprintf("round%d-restart%d-from%d", round, i, j)
				put(t, tn.node, key, "v")
				c.waitValue(5*time.Second, key, []byte("v"))
			}
		}
	}
}

func TestDuplicateNameIsRefused(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	dup := &testNode{name: "node-0", dir: t.TempDir()}
	c.nodes = append(c.nodes, dup)
	c.start(2)
	select {
	case <-dup.node.Fatal():
	case <-time.After(10 * time.Second):
		t.Fatal("a second node-0 was not refused")
	}
	if err := dup.node.FatalErr(); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("fatal error = %v, want ErrNameTaken", err)
	}
	c.stop(2)
	c.nodes = c.nodes[:2]
	c.waitAlive(5*time.Second, "node-0", "node-1")
	for _, tn := range c.nodes {
		if ms := tn.node.Members(); len(ms) != 2 {
			t.Fatalf("%s lists %v", tn.name, ms)
		}
	}
	put(t, c.nodes[1].node, "after", "v")
	c.waitValue(5*time.Second, "after", []byte("v"))
}

func TestConditionalWrites(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	n := c.nodes[0].node
	ctx := context.Background()
	first, err := n.Put(ctx, Write{Key: "k", Value: []byte("1"), If: Precondition{Absent: true}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		w    Write
		ok   bool
	}{
		{"absent on a present key", Write{Key: "k", Value: []byte("x"), If: Precondition{Absent: true}}, false},
		{"exists on an absent key", Write{Key: "nope", Value: []byte("x"), If: Precondition{Exists: true}}, false},
		{"match another version", Write{Key: "k", Value: []byte("x"), If: Precondition{Match: engine.Version{Time: 1}}}, false},
		{"not-match the current version", Write{Key: "k", Value: []byte("x"), If: Precondition{NotMatch: first.Version}}, false},
		{"match the current version", Write{Key: "k", Value: []byte("2"), If: Precondition{Match: first.Version}}, true},
		{"delete if it exists", Write{Key: "k", Delete: true, If: Precondition{Exists: true}}, true},
		{"delete if it exists, again", Write{Key: "k", Delete: true, If: Precondition{Exists: true}}, false},
	}
	for _, tc := range cases {
		before, had := n.Get(tc.w.Key)
		_, err := n.Put(ctx, tc.w)
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrPrecondition) {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if after, has := n.Get(tc.w.Key); !tc.ok && (has != had || after.Version != before.Version) {
			t.Fatalf("%s: a failed precondition changed the key", tc.name)
		}
	}

	// Concurrent creates of one key: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.Put(ctx, Write{Key: "race", Value: []byte{byte(i)}, If: Precondition{Absent: true}})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrPrecondition):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent creates won, want 1", wins.Load())
	}
}

func TestRepairTrafficFollowsDifferences(t *testing.T) {
	c := newTestCluster(t, 2, func(cfg *Config, _ *engine.Config) {
		cfg.AntiEntropyInterval = time.Hour
	})
	c.waitReady(5*time.Second, 1)
	const keys, differ = 20000, 500
	v := engine.Version{Time: c.nodes[0].node.clock.Now(), Node: 1}
	var common []engine.Entry
	for i := range keys {
		common = append(common, engine.Entry{Key: fmt.Sprintf("key-%06d", i), Value: []byte("same"), Version: v})
	}
	for _, tn := range c.nodes {
		if _, err := tn.eng.ApplyBatch(common); err != nil {
			t.Fatal(err)
		}
	}
	// 250 keys only node-0 has, 250 where node-1 has a newer version.
	newer := engine.Version{Time: v.Time + 1, Node: 2}
	for i := range differ {
		e := engine.Entry{Key: fmt.Sprintf("only-%d", i), Value: []byte("x"), Version: v}
		tn := c.nodes[0]
		if i%2 == 1 {
			e = engine.Entry{Key: fmt.Sprintf("key-%06d", i*7), Value: []byte("newer"), Version: newer}
			tn = c.nodes[1]
		}
		if _, err := tn.eng.ApplyBatch([]engine.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := c.nodes[0].node.mem.livePeer("node-1")
	st, err := c.nodes[0].node.sync.syncWith(p)
	if err != nil {
		t.Fatal(err)
	}
	if moved := st.pulled + st.pushed; moved != differ {
		t.Fatalf("moved %d entries (pulled %d, pushed %d) for %d differing keys", moved, st.pulled, st.pushed, differ)
	}
	if st.digestBytes > 256<<10 {
		t.Fatalf("%d bytes of digests for %d differing keys", st.digestBytes, differ)
	}
	c.waitConverged(5 * time.Second)
	t.Logf("%d differing of %d keys: %d leaves, %d entries moved, %d digest bytes", differ, keys, st.leaves, st.pulled+st.pushed, st.digestBytes)
}
