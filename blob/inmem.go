package blob

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
)

// InmemCatalog is a Catalog in memory, shared by the Stores of an
// in-process cluster in tests and examples. Safe for concurrent use.
type InmemCatalog struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewInmemCatalog returns an empty catalog.
func NewInmemCatalog() *InmemCatalog { return &InmemCatalog{m: map[string][]byte{}} }

// Put stores a copy of value.
func (c *InmemCatalog) Put(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = slices.Clone(value)
	return nil
}

// Get returns a copy of the value of key.
func (c *InmemCatalog) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return slices.Clone(v), ok
}

// Delete removes key.
func (c *InmemCatalog) Delete(ctx context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}

// List lists keys as Catalog.List says.
func (c *InmemCatalog) List(prefix, after string, limit int) ([]string, string) {
	c.mu.Lock()
	var keys []string
	for k := range c.m {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	sort.Strings(keys)
	if limit > 0 && len(keys) > limit {
		return keys[:limit], keys[limit-1]
	}
	return keys, ""
}

// InmemCluster is a membership whose live set a test changes at will. The
// nodes of one in-process cluster share one InmemCluster and each gets
// its own view with Member. Safe for concurrent use.
type InmemCluster struct {
	mu   sync.Mutex
	live []Peer
}

// NewInmemCluster returns a cluster with no live node.
func NewInmemCluster() *InmemCluster { return &InmemCluster{} }

// Join marks p live (replacing a peer of the same name).
func (c *InmemCluster) Join(p Peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = slices.DeleteFunc(c.live, func(q Peer) bool { return q.Name == p.Name })
	c.live = append(c.live, p)
}

// Leave marks the node named name absent.
func (c *InmemCluster) Leave(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = slices.DeleteFunc(c.live, func(q Peer) bool { return q.Name == name })
}

// Member returns the Members view of the node named self.
func (c *InmemCluster) Member(self string) Members { return inmemMember{c: c, self: self} }

type inmemMember struct {
	c    *InmemCluster
	self string
}

func (m inmemMember) Self() string { return m.self }

func (m inmemMember) Live() []Peer {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	return slices.Clone(m.c.live)
}
