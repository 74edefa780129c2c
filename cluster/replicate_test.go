package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
)

func TestPeerQueueBoundAndBatches(t *testing.T) {
	p := &peer{max: 100, wake: make(chan struct{}, 1)}
	e := engine.Entry{Key: "k", Value: make([]byte, 1000)}
	for i := range 100 {
		e.Key = fmt.Sprintf("k-%03d", i)
		if !p.push(e) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if p.push(e) {
		t.Fatal("push accepted beyond the bound")
	}
	one := entrySize(&e)
	batch, _ := p.take(10 * one)
	if len(batch) != 10 || batch[0].Key != "k-000" || batch[9].Key != "k-009" {
		t.Fatalf("first batch: %d entries from %q", len(batch), batch[0].Key)
	}
	if p.depth() != 90 || p.bytes() != 90*one {
		t.Fatalf("after a batch: depth %d bytes %d, want 90 and %d", p.depth(), p.bytes(), 90*one)
	}
	if !p.push(e) {
		t.Fatal("push refused after the queue drained below the bound")
	}
	batch, _ = p.take(1 << 30)
	if len(batch) != 91 || batch[0].Key != "k-010" || p.depth() != 0 || p.bytes() != 0 {
		t.Fatalf("draining take: %d entries from %q, depth %d, bytes %d", len(batch), batch[0].Key, p.depth(), p.bytes())
	}
	big := engine.Entry{Key: "big", Value: make([]byte, 1<<20)}
	p.push(big)
	if batch, _ = p.take(1024); len(batch) != 1 {
		t.Fatalf("an entry larger than a batch must still go alone, got %d", len(batch))
	}
}

func TestRecentRingWindowAndBound(t *testing.T) {
	const bound = 1 << 20
	r := recentRing{max: bound}
	t0 := time.Now()
	e := engine.Entry{Key: "a", Value: make([]byte, 100)}
	r.add(t0, &e)
	e.Key = "b"
	r.add(t0.Add(recentWindow/2), &e)
	got, whole := r.since(t0.Add(recentWindow / 2))
	if len(got) != 2 || !whole {
		t.Fatalf("within the window: %d writes, whole %v; want 2, true", len(got), whole)
	}
	got, whole = r.since(t0.Add(recentWindow + time.Millisecond))
	if len(got) != 1 || got[0].key != "b" || !whole {
		t.Fatalf("after the first left the window: %v, whole %v; want [b], true", got, whole)
	}
	// Writes beyond the bound push out older ones still in the window:
	// the ring then says it is not the whole story.
	big := engine.Entry{Key: strings.Repeat("k", bound/4)}
	for range 5 {
		r.add(t0.Add(recentWindow/2), &big)
	}
	if r.bytes > bound {
		t.Fatalf("ring holds %d bytes, bound %d", r.bytes, bound)
	}
	if _, whole = r.since(t0.Add(recentWindow / 2)); whole {
		t.Fatal("writes dropped for room within the window, yet the ring claims to hold them all")
	}
}

// TestRecentRingKeepsNoValues: the ring charges a write by its key, so a
// large value neither fills it nor is kept alive by it.
func TestRecentRingKeepsNoValues(t *testing.T) {
	r := recentRing{max: 64 << 10}
	t0 := time.Now()
	for i := range 16 {
		r.add(t0, &engine.Entry{Key: fmt.Sprint("k", i), Value: make([]byte, 1<<20)})
	}
	got, whole := r.since(t0)
	if len(got) != 16 || !whole {
		t.Fatalf("16 writes of 1 MiB values in a 64 KiB ring: holds %d, whole %v; want 16, true", len(got), whole)
	}
	if r.bytes > 16*(recentCost+3) {
		t.Fatalf("the ring charges %d bytes for 16 short keys", r.bytes)
	}
}

// TestRecentRingShrinksAsItForgets: under a steady stream of writes the
// ring lets go of each block once the window has passed all of it.
func TestRecentRingShrinksAsItForgets(t *testing.T) {
	r := recentRing{max: 1 << 30}
	t0 := time.Now()
	for i := range 5 * recentBlock {
		r.add(t0, &engine.Entry{Key: fmt.Sprint("old", i)})
	}
	if len(r.blocks) != 5 {
		t.Fatalf("%d writes in %d blocks, want 5", 5*recentBlock, len(r.blocks))
	}
	later := t0.Add(recentWindow + time.Millisecond)
	want := 0
	for i := range recentBlock / 2 {
		e := engine.Entry{Key: fmt.Sprint("new", i)}
		r.add(later, &e)
		want += recentCost + len(e.Key)
	}
	if len(r.blocks) != 1 || r.bytes != want {
		t.Fatalf("after the window passed the old writes: %d blocks, %d bytes; want 1, %d", len(r.blocks), r.bytes, want)
	}
	if got, whole := r.since(later); len(got) != recentBlock/2 || !whole || got[0].key != "new0" {
		t.Fatalf("held %d writes (whole %v), want the %d new ones", len(got), whole, recentBlock/2)
	}
}

// TestRecentRingForgetsWhenQuiet: once no write came for the window, the
// ring holds nothing, not even its array, and still tells the whole story.
func TestRecentRingForgetsWhenQuiet(t *testing.T) {
	r := recentRing{max: 1 << 20}
	t0 := time.Now()
	for i := range 1000 {
		r.add(t0, &engine.Entry{Key: fmt.Sprint("k", i), Value: make([]byte, 100)})
	}
	r.expire(t0.Add(recentWindow / 2))
	if got, whole := r.since(t0.Add(recentWindow / 2)); len(got) != 1000 || !whole {
		t.Fatalf("within the window: %d writes, whole %v; want 1000, true", len(got), whole)
	}
	later := t0.Add(recentWindow + time.Millisecond)
	r.expire(later)
	if r.bytes != 0 || r.blocks != nil || r.head != 0 {
		t.Fatalf("quiet past the window, the ring holds %d bytes in %d blocks", r.bytes, len(r.blocks))
	}
	if got, whole := r.since(later); len(got) != 0 || !whole {
		t.Fatalf("after expiry: %d writes, whole %v; want 0, true", len(got), whole)
	}
	r.add(later, &engine.Entry{Key: "next", Value: []byte("v")})
	if got, _ := r.since(later); len(got) != 1 || got[0].key != "next" {
		t.Fatalf("a write after expiry: %v", got)
	}
}

// twoSyncedNodes starts two nodes with only their join-time syncs (no
// periodic one), waits for those to end, and returns them with b as a sees
// it.
func twoSyncedNodes(t *testing.T) (a, b *Node, pb peerInfo) {
	t.Helper()
	c := newTestCluster(t, 2, func(cfg *Config, _ *engine.Config) {
		cfg.AntiEntropyInterval = time.Hour
	})
	a, b = c.nodes[0].node, c.nodes[1].node
	waitFor(t, 5*time.Second, "the join-time syncs to end", func() bool {
		return b.sync.firstDone() && a.sync.idle() && b.sync.idle()
	})
	pb, ok := a.mem.livePeer(b.cfg.Name)
	if !ok {
		t.Fatalf("%s does not see %s alive", a.cfg.Name, b.cfg.Name)
	}
	return a, b, pb
}

// TestPeerTurningAliveLateGetsRecentWrites: two nodes see each other turn
// alive at different moments. A write taken on a node in between reaches
// neither the replication queue (the peer is not alive there yet) nor the
// peer's join-time sync (done before the write); it must reach the peer
// anyway, without waiting for the periodic sync.
func TestPeerTurningAliveLateGetsRecentWrites(t *testing.T) {
	a, b, pb := twoSyncedNodes(t)
	a.rep.stop(b.cfg.Name) // as if a had seen b leave and not yet return
	put(t, a, "late", "v1")
	a.rep.start(pb.node) // b turns alive on a, without a sync
	waitFor(t, 5*time.Second, "the write taken before b turned alive to reach b", func() bool {
		e, ok := b.Get("late")
		return ok && string(e.Value) == "v1"
	})
}

// TestPeerTurningAliveLateGetsRecentDeletes: a delete taken while a peer
// was not yet alive here reaches it as a tombstone; a write whose value
// expired before the peer turned alive reaches it through the sync.
func TestPeerTurningAliveLateGetsRecentDeletes(t *testing.T) {
	a, b, pb := twoSyncedNodes(t)
	put(t, a, "doomed", "v1")
	waitFor(t, 5*time.Second, "doomed to reach b", func() bool {
		_, ok := b.Get("doomed")
		return ok
	})
	a.rep.stop(b.cfg.Name)
	gone := del(t, a, "doomed")
	exp := time.Now().Add(50 * time.Millisecond)
	short, err := a.Put(context.Background(), Write{Key: "short", Value: []byte("v"), ExpiresAt: exp.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "short to expire", func() bool {
		_, ok := a.Get("short")
		return !ok
	})
	a.rep.start(pb.node)
	for key, want := range map[string]engine.Version{"doomed": gone.Version, "short": short.Version} {
		waitFor(t, 5*time.Second, key+"'s newest version to reach b", func() bool {
			v, ok := b.store.Head(key)
			return ok && v == want
		})
	}
	if _, ok := b.Get("doomed"); ok {
		t.Fatal("b still serves the key deleted before it turned alive")
	}
}

// TestWritesGoOnWhileRecentWritesReplay: queueing the recent writes for a
// peer that turns alive takes a store lookup each (up to tens of thousands
// of them); writes on the node do not wait for it, and both the replayed
// write and the one taken meanwhile reach the peer.
func TestWritesGoOnWhileRecentWritesReplay(t *testing.T) {
	a, b, pb := twoSyncedNodes(t)
	// The first replay to start (this test's, or one membership starts)
	// waits until release.
	reached, release := make(chan struct{}), make(chan struct{})
	var hold, free sync.Once
	a.rep.mu.Lock()
	a.rep.beforeReplay = func() { hold.Do(func() { close(reached); <-release }) }
	a.rep.mu.Unlock()
	defer free.Do(func() { close(release) })
	// write fails the test when a write on a does not end in time.
	write := func(key, value string) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			_, err := a.Put(context.Background(), Write{Key: key, Value: []byte(value)})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("writing %s waited for the replay of the recent writes", key)
		}
	}
	a.rep.stop(b.cfg.Name)
	write("late", "v1")
	go a.rep.start(pb.node)
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("no replay of the recent writes started")
	}
	write("during", "v2")
	free.Do(func() { close(release) })
	for key, want := range map[string]string{"late": "v1", "during": "v2"} {
		waitFor(t, 5*time.Second, key+" to reach "+b.cfg.Name, func() bool {
			e, ok := b.Get(key)
			return ok && string(e.Value) == want
		})
	}
}

// idle reports whether no sync runs.
func (s *syncer) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight) == 0
}

// forgetRecent empties the recent-writes ring.
func (r *replicator) forgetRecent() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent.mu.Lock()
	defer r.recent.mu.Unlock()
	r.recent.blocks, r.recent.head, r.recent.bytes = nil, 0, 0
}

// TestJoiningNodeReceivesMissedWritesOnce: a node that returns syncs with
// one peer at a time and its peers leave it to do so, so what it missed
// crosses once rather than once per sync running at the same time.
func TestJoiningNodeReceivesMissedWritesOnce(t *testing.T) {
	const keys = 2000
	c := newTestCluster(t, 3, func(cfg *Config, _ *engine.Config) {
		cfg.AntiEntropyInterval = time.Hour // only the join-time syncs
	})
	c.stop(2)
	c.waitGone(5*time.Second, "node-2")
	for i := range keys {
		put(t, c.nodes[i%2].node, fmt.Sprintf("missed-%d", i), "v")
	}
	c.waitConverged(10 * time.Second)
	for _, tn := range c.running() {
		tn.node.rep.forgetRecent() // only the sync may bring them
	}
	c.start(2)
	c.waitAlive(5*time.Second, c.names()...)
	c.waitConverged(10 * time.Second)
	n2 := c.nodes[2].node
	if got := counterValue(t, n2.metrics.entriesReceived); got != keys {
		t.Fatalf("the returning node received %v entries for the %d it missed", got, keys)
	}
}

// headStore is a store whose key has one newest version and, maybe, a
// visible entry; the rest of Store is not used.
type headStore struct {
	Store
	head    engine.Version
	held    bool
	entry   engine.Entry
	visible bool
}

func (s headStore) Head(string) (engine.Version, bool) { return s.head, s.held }
func (s headStore) Get(string) (engine.Entry, bool)    { return s.entry, s.visible }

// TestReplayDecidesFromTheStore: what a peer that turns alive is sent for
// one of this node's recent writes, from what the store holds now.
func TestReplayDecidesFromTheStore(t *testing.T) {
	v := engine.Version{Time: 7 << 16, Node: 1}
	newer := engine.Version{Time: 8 << 16, Node: 2}
	past := time.Now().Add(-time.Second).UnixNano()
	value := engine.Entry{Key: "k", Value: []byte("v"), Version: v}
	for _, c := range []struct {
		name     string
		w        recentWrite
		st       headStore
		ok, held bool
		want     engine.Entry
	}{
		{"still the newest", recentWrite{key: "k", ver: v}, headStore{head: v, held: true, entry: value, visible: true}, true, true, value},
		{"overwritten since", recentWrite{key: "k", ver: v}, headStore{head: newer, held: true}, false, false, engine.Entry{}},
		{"gone from the store", recentWrite{key: "k", ver: v}, headStore{}, false, false, engine.Entry{}},
		{"a delete", recentWrite{key: "k", ver: v, deleted: true}, headStore{head: v, held: true},
			true, true, engine.Entry{Key: "k", Version: v, Deleted: true}},
		{"expired since: left to the sync", recentWrite{key: "k", ver: v, exp: past}, headStore{head: v, held: true}, false, true, engine.Entry{}},
		{"evicted since: not this node's to send", recentWrite{key: "k", ver: v}, headStore{head: v, held: true}, false, false, engine.Entry{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &replicator{n: &Node{store: c.st}}
			e, ok, held := r.newest(&c.w)
			if ok != c.ok || held != c.held || e.Key != c.want.Key || e.Version != c.want.Version ||
				e.Deleted != c.want.Deleted || string(e.Value) != string(c.want.Value) {
				t.Fatalf("newest = %+v, ok %v, held %v; want %+v, %v, %v", e, ok, held, c.want, c.ok, c.held)
			}
		})
	}
}
