package blob

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/klauspost/reedsolomon"
)

// Store is one node's view of the erasure-coded blob store: it streams
// blobs in and out over the shard holders, keeps the manifests in the
// Catalog and repairs what it finds damaged or lost. Safe for concurrent
// use.
type Store struct {
	cfg     Config
	local   ShardStore
	client  ShardClient
	members Members
	catalog Catalog
	log     *slog.Logger
	met     *metrics

	encMu sync.Mutex
	encs  map[[2]int]reedsolomon.Encoder

	absentMu    sync.Mutex
	absentSince map[string]time.Time // node -> first seen absent

	ov      overlay    // announced records the catalog has not caught up with
	bad     badBlocks  // blocks of local shards that failed their checksum
	orphans orphanSeen // local shard files no manifest names, since when

	// beforeRecord, when set (by tests), is called by a repair after it has
	// rebuilt shards and before it writes the changed manifest.
	beforeRecord func(id string)

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgMu     sync.Mutex // guards closed against bg.Add
	closed   bool
	bg       sync.WaitGroup
}

// New opens a Store and starts its background work: the repair pass, the
// scrubber and the sweep of announced records.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	local := cfg.Shards
	if local == nil {
		ds, err := NewDirStore(cfg.Dir)
		if err != nil {
			return nil, err
		}
		local = ds
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg: cfg, local: local, client: cfg.Client, members: cfg.Members, catalog: cfg.Catalog,
		log: cfg.Logger, met: met,
		encs:        map[[2]int]reedsolomon.Encoder{},
		absentSince: map[string]time.Time{},
		ov:          overlay{m: map[string]overlayEntry{}},
		bad:         badBlocks{m: map[ShardRef]int{}},
		orphans:     orphanSeen{m: map[ShardRef]time.Time{}},
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.goBackground(func(context.Context) { s.sweepLoop() })
	if cfg.RepairInterval > 0 {
		s.goBackground(func(context.Context) { s.repairLoop(cfg.RepairInterval) })
	}
	if cfg.ScrubInterval > 0 {
		s.goBackground(func(context.Context) { s.scrubLoop(cfg.ScrubInterval) })
	}
	return s, nil
}

// Close stops the background work and waits for it.
func (s *Store) Close() error {
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.bgCancel()
	s.bg.Wait()
	if hc, ok := s.client.(*HTTPClient); ok {
		hc.CloseIdleConnections()
	}
	return nil
}

// ShardHandler returns the handler serving this node's shards and blob
// records to the other nodes (a ShardServer), to mount at
// ShardPathPrefix.
func (s *Store) ShardHandler() http.Handler { return s.shardServer(s.local) }

// shardServer is the ShardServer of this store over shards (a test passes
// a failing one).
func (s *Store) shardServer(shards ShardStore) *ShardServer {
	srv := NewShardServer(shards, s.log)
	srv.node = s
	return srv
}

// encoder returns the (cached) Reed-Solomon coder for k+m shards.
func (s *Store) encoder(k, m int) (reedsolomon.Encoder, error) {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	if e, ok := s.encs[[2]int{k, m}]; ok {
		return e, nil
	}
	e, err := reedsolomon.New(k, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadParams, err)
	}
	s.encs[[2]int{k, m}] = e
	return e, nil
}

// goBackground runs f on a tracked goroutine that Close waits for.
func (s *Store) goBackground(f func(ctx context.Context)) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f(s.bgCtx)
	}()
}

func newGeneration() uint64 {
	for {
		if g := rand.Uint64(); g != 0 {
			return g
		}
	}
}

// liveMap indexes the live members by name.
func (s *Store) liveMap() map[string]Peer {
	live := s.members.Live()
	out := make(map[string]Peer, len(live))
	for _, p := range live {
		out[p.Name] = p
	}
	return out
}

func (s *Store) isSelf(p Peer) bool { return p.Name == s.members.Self() }

// Holder operations: the local ShardStore for this node, the client for
// the others.

func (s *Store) create(ctx context.Context, p Peer, ref ShardRef, bs int) (ShardWriter, error) {
	if s.isSelf(p) {
		return s.local.Create(ref, bs)
	}
	return s.client.Create(ctx, p.HTTPAddr, ref, bs)
}

func (s *Store) openBlocks(ctx context.Context, p Peer, ref ShardRef, from, to int) (io.ReadCloser, error) {
	if s.isSelf(p) {
		return s.local.OpenBlocks(ref, from, to)
	}
	return s.client.OpenBlocks(ctx, p.HTTPAddr, ref, from, to)
}

func (s *Store) rewriteBlock(ctx context.Context, p Peer, ref ShardRef, b int, data []byte) error {
	if s.isSelf(p) {
		return s.local.RewriteBlock(ref, b, data)
	}
	return s.client.RewriteBlock(ctx, p.HTTPAddr, ref, b, data)
}

func (s *Store) removeShard(ctx context.Context, p Peer, ref ShardRef) error {
	if s.isSelf(p) {
		return s.local.Remove(ref)
	}
	return s.client.Remove(ctx, p.HTTPAddr, ref)
}

// removeShards removes the shards of generation gen of blob id from each
// of the named holders that is live, in parallel; absent holders are
// cleaned by their own repair pass when they return.
func (s *Store) removeShards(ctx context.Context, id string, gen uint64, holders []string) {
	live := s.liveMap()
	var wg sync.WaitGroup
	for i, name := range holders {
		p, ok := live[name]
		if !ok {
			continue
		}
		wg.Go(func() {
			ref := ShardRef{ID: id, Gen: gen, Index: i}
			if err := s.removeShard(ctx, p, ref); err != nil {
				s.log.Warn("removing shard", slog.String("id", id), slog.Int("index", i), slog.String("node", name), slog.Any("err", err))
			}
		})
	}
	wg.Wait()
}

// getManifest reads the manifest of id from this node's catalog.
func (s *Store) getManifest(id string) (Manifest, error) {
	rec, ok, err := s.catalogRecord(id)
	if err != nil {
		return Manifest{}, err
	}
	if !ok {
		return Manifest{}, fmt.Errorf("%w: blob %q", ErrNotFound, id)
	}
	return *rec.Manifest, nil
}

// badBlocks remembers the blocks of local shards that failed their
// checksum when last read and are not rewritten yet, for the shards'
// health.
type badBlocks struct {
	mu sync.Mutex
	m  map[ShardRef]int
}

func (b *badBlocks) set(ref ShardRef, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n == 0 {
		delete(b.m, ref)
		return
	}
	b.m[ref] = n
}

func (b *badBlocks) get(ref ShardRef) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[ref]
}

// badBlocks is the ShardServer's view of b.
func (s *Store) badBlocks(ref ShardRef) int { return s.bad.get(ref) }
