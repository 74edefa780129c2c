package blob

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// InmemCatalog is a Catalog in memory, shared by the Stores of an
// in-process cluster in tests and examples: a write is seen by every node
// at once. InmemCatalogs models the replication lag of the real catalog.
// Safe for concurrent use.
type InmemCatalog struct {
	mu    sync.Mutex
	clock uint64
	r     records
}

// NewInmemCatalog returns an empty catalog.
func NewInmemCatalog() *InmemCatalog { return &InmemCatalog{r: records{}} }

// Put stores a copy of value as Catalog.Put says.
func (c *InmemCatalog) Put(ctx context.Context, key string, value []byte, prev Version) (Version, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.write(key, slices.Clone(value), false, prev, &c.clock)
}

// Get returns a copy of the value of key and its version.
func (c *InmemCatalog) Get(key string) ([]byte, Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.get(key)
}

// Delete removes key as Catalog.Delete says.
func (c *InmemCatalog) Delete(ctx context.Context, key string, prev Version) (Version, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.write(key, nil, true, prev, &c.clock)
}

// List lists keys as Catalog.List says.
func (c *InmemCatalog) List(prefix, after string, limit int) ([]string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.list(prefix, after, limit)
}

// InmemCatalogs are the catalogs of an in-process cluster whose nodes each
// keep their own copy, as the real replicated catalog does: a write is
// checked and applied on the node that makes it, and reaches the other
// nodes only when Deliver is called. Versions come from one counter, so a
// later write always has the higher version. Safe for concurrent use.
type InmemCatalogs struct {
	mu      sync.Mutex
	clock   uint64
	nodes   map[string]records
	pending []inmemWrite
}

type inmemWrite struct {
	key string
	rec inmemRecord
}

// inmemRecord is one version of a key in an in-memory catalog.
type inmemRecord struct {
	Version Version
	Deleted bool
	value   []byte
}

// NewInmemCatalogs returns the catalogs of a cluster with no node.
func NewInmemCatalogs() *InmemCatalogs { return &InmemCatalogs{nodes: map[string]records{}} }

// Node returns the catalog of the node named name, empty the first time.
func (c *InmemCatalogs) Node(name string) Catalog {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[name] == nil {
		c.nodes[name] = records{}
	}
	return inmemReplica{c: c, name: name}
}

// Deliver applies every write made so far on every node (the newer
// version of a key wins, as in the cluster).
func (c *InmemCatalogs) Deliver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.pending {
		for _, r := range c.nodes {
			r.apply(w.key, w.rec)
		}
	}
	c.pending = nil
}

type inmemReplica struct {
	c    *InmemCatalogs
	name string
}

func (r inmemReplica) write(ctx context.Context, key string, value []byte, del bool, prev Version) (Version, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, err
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	recs := r.c.nodes[r.name]
	v, err := recs.write(key, value, del, prev, &r.c.clock)
	if err == nil {
		r.c.pending = append(r.c.pending, inmemWrite{key: key, rec: recs[key]})
	}
	return v, err
}

func (r inmemReplica) Put(ctx context.Context, key string, value []byte, prev Version) (Version, error) {
	return r.write(ctx, key, slices.Clone(value), false, prev)
}

func (r inmemReplica) Delete(ctx context.Context, key string, prev Version) (Version, error) {
	return r.write(ctx, key, nil, true, prev)
}

func (r inmemReplica) Get(key string) ([]byte, Version, bool) {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.nodes[r.name].get(key)
}

func (r inmemReplica) List(prefix, after string, limit int) ([]string, string) {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.nodes[r.name].list(prefix, after, limit)
}

// records is one node's catalog: key -> latest record, tombstones
// included. The caller holds the lock.
type records map[string]inmemRecord

// write checks prev against the visible record of key and stores the new
// one under the next version of clock.
func (rs records) write(key string, value []byte, del bool, prev Version, clock *uint64) (Version, error) {
	cur, ok := rs[key]
	visible := ok && !cur.Deleted
	switch {
	case prev.IsZero() && visible && !del:
		return Version{}, fmt.Errorf("%w: %q exists", ErrConflict, key)
	case !prev.IsZero() && (!visible || cur.Version != prev):
		return Version{}, fmt.Errorf("%w: %q is not at version %v", ErrConflict, key, prev)
	}
	*clock++
	v := Version{Time: *clock}
	rs[key] = inmemRecord{Version: v, Deleted: del, value: value}
	return v, nil
}

// apply stores a replicated record unless a newer one is there.
func (rs records) apply(key string, rec inmemRecord) {
	if cur, ok := rs[key]; ok && cur.Version.Compare(rec.Version) >= 0 {
		return
	}
	rs[key] = rec
}

// get returns a copy of the visible value of key and its version, or
// the version of its tombstone.
func (rs records) get(key string) ([]byte, Version, bool) {
	rec, ok := rs[key]
	if !ok || rec.Deleted {
		return nil, rec.Version, false
	}
	return slices.Clone(rec.value), rec.Version, true
}

func (rs records) list(prefix, after string, limit int) ([]string, string) {
	var keys []string
	for k, rec := range rs {
		if !rec.Deleted && strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
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
