package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
)

// evictingStore shows the keys in evicted as the engine shows eviction
// stubs: in LeafEntries with Evicted set and no value, absent for Get.
type evictingStore struct {
	Store
	mu      sync.Mutex
	evicted map[string]bool
}

func (s *evictingStore) isEvicted(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted[key]
}

func (s *evictingStore) Get(key string) (engine.Entry, bool) {
	if s.isEvicted(key) {
		return engine.Entry{}, false
	}
	return s.Store.Get(key)
}

func (s *evictingStore) LeafEntries(leaf int) []engine.Entry {
	ents := s.Store.LeafEntries(leaf)
	for i := range ents {
		if s.isEvicted(ents[i].Key) {
			ents[i].Value, ents[i].ContentType, ents[i].Evicted = nil, "", true
		}
	}
	return ents
}

func TestEvictedKeysAreNeverSent(t *testing.T) {
	var node0 *evictingStore
	c := &testCluster{t: t, faults: NewFaults(), wrap: func(name string, s Store) Store {
		if name != "node-0" {
			return s
		}
		node0 = &evictingStore{Store: s, evicted: map[string]bool{}}
		return node0
	}}
	for i := range 2 {
		c.nodes = append(c.nodes, &testNode{name: fmt.Sprintf("node-%d", i), dir: t.TempDir()})
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.start(0)
	// Keys node-0 holds and then evicts, before node-1 exists.
	for i := range 20 {
		put(t, c.nodes[0].node, fmt.Sprintf("gone-%d", i), "v")
		node0.mu.Lock()
		node0.evicted[fmt.Sprintf("gone-%d", i)] = true
		node0.mu.Unlock()
	}
	put(t, c.nodes[0].node, "kept", "v")
	c.start(1)
	c.waitAlive(5*time.Second, c.names()...)
	c.waitReady(5*time.Second, 1)
	c.waitRounds(1)
	if _, ok := c.nodes[1].node.Get("kept"); !ok {
		t.Fatal("a key node-0 holds did not reach node-1")
	}
	for i := range 20 {
		if e, ok := c.nodes[1].node.Get(fmt.Sprintf("gone-%d", i)); ok {
			t.Fatalf("an evicted key reached a peer as %q", e.Value)
		}
	}
	// A stub that arrives from a peer is refused, not applied.
	n1 := c.nodes[1].node
	n1.applyRemote(header{from: "node-0"}, []engine.Entry{{Key: "stub", Evicted: true, Version: n1.clock.Version()}}, true)
	if got := counterValue(t, n1.metrics.rejected.WithLabelValues("bad_entry")); got != 1 {
		t.Fatalf("stubs refused = %v, want 1", got)
	}
}
