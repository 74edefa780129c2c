package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// The catalog reaches the other nodes asynchronously, so on its own it
// cannot make a new manifest, or a deletion, visible everywhere by the time
// a PUT or DELETE answers. Three things do:
//
//   - After its compare-and-set, the writer sends the new Record to every
//     other live node (publish) and waits for them, up to ManifestTimeout.
//     A node keeps what it is sent in its overlay until its catalog has
//     caught up (a record of at least that version) or overlayTTL passed.
//   - A node reads the newer of its catalog's record and its overlay's
//     (localRecord).
//   - A node that has neither asks the nodes first in the blob's
//     rendezvous order, where a PUT puts the shards, before it answers
//     that there is no such blob (askHolders).

// overlayTTL is how long an announced record is kept when the catalog does
// not catch up with it; replication takes milliseconds, anti-entropy
// seconds, the catch-up of a node that returns about one.
const overlayTTL = time.Minute

// overlayMax bounds the records an overlay holds; past it, the oldest are
// dropped (the catalog has long caught up with them in practice).
const overlayMax = 100_000

// overlay holds records announced by other nodes that this node's catalog
// has not caught up with yet.
type overlay struct {
	mu sync.Mutex
	m  map[string]overlayEntry
}

type overlayEntry struct {
	rec Record
	at  time.Time // when it was taken
}

func (o *overlay) get(id string) (Record, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[id]
	return e.rec, ok
}

// put keeps rec unless a newer record of id is there.
func (o *overlay) put(id string, rec Record, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.m[id]; ok && !rec.newer(e.rec) {
		return
	}
	if len(o.m) >= overlayMax {
		o.dropOldest(len(o.m) - overlayMax + 1)
	}
	o.m[id] = overlayEntry{rec: rec, at: now}
}

// drop removes the record of id if it is still the one of version v.
func (o *overlay) drop(id string, v Version) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.m[id]; ok && e.rec.Version == v {
		delete(o.m, id)
	}
}

func (o *overlay) dropOldest(n int) {
	type aged struct {
		id string
		at time.Time
	}
	all := make([]aged, 0, len(o.m))
	for id, e := range o.m {
		all = append(all, aged{id, e.at})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, a := range all[:min(n, len(all))] {
		delete(o.m, a.id)
	}
}

// entries returns a copy of what the overlay holds.
func (o *overlay) entries() map[string]overlayEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]overlayEntry, len(o.m))
	for id, e := range o.m {
		out[id] = e
	}
	return out
}

// catalogRecord reads the record of id from this node's catalog; ok is
// false when the catalog has none (never written, or deleted: then the
// record is the deletion, with its version when the catalog knows it).
func (s *Store) catalogRecord(id string) (Record, bool, error) {
	b, v, ok := s.catalog.Get(id)
	if !ok {
		return Record{Version: v, Deleted: true}, false, nil
	}
	m, err := decodeManifest(id, b)
	if err != nil {
		return Record{Version: v}, true, err
	}
	return Record{Version: v, Manifest: &m}, true, nil
}

// localRecord is the newest record of id this node has: its catalog's,
// or an announced one the catalog has not caught up with. ok is false
// when it has neither. An overlay record the catalog has caught up with
// is dropped.
func (s *Store) localRecord(id string) (Record, bool, error) {
	cat, ok, err := s.catalogRecord(id)
	if ov, has := s.ov.get(id); has {
		if ov.newer(cat) {
			return ov, true, nil
		}
		s.ov.drop(id, ov.Version)
	}
	return cat, ok, err
}

// takeRecord keeps a record another node announced (the ShardServer's
// PUT /internal/shards/{id}).
func (s *Store) takeRecord(id string, rec Record) error {
	if err := rec.check(id); err != nil {
		return err
	}
	if cat, _, _ := s.catalogRecord(id); !rec.newer(cat) {
		return nil // the catalog has it already, or something newer
	}
	s.ov.put(id, rec, time.Now())
	return nil
}

// publish tells every other live node of the new record of id, in
// parallel, and waits for them up to ManifestTimeout. It reports whether
// every live node took it. It runs after the catalog write, whatever
// happens to the caller's request: the write is done.
func (s *Store) publish(ctx context.Context, id string, rec Record) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ManifestTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	all := true
	for _, p := range s.members.Live() {
		if s.isSelf(p) {
			continue
		}
		wg.Go(func() {
			if err := s.client.PutRecord(ctx, p.HTTPAddr, id, rec); err != nil {
				s.log.Warn("announcing a blob's manifest", slog.String("id", id), slog.String("node", p.Name), slog.Any("err", err))
				mu.Lock()
				all = false
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return all
}

// askHolders asks the live nodes first in id's rendezvous order (as many
// as a blob of the default geometry has shards) for their record of id
// and returns the newest answer, which it keeps in the overlay. ok is
// false when none has one.
func (s *Store) askHolders(ctx context.Context, id string) (Record, bool) {
	var others []Peer
	for _, p := range rank(id, s.members.Live()) {
		if !s.isSelf(p) {
			others = append(others, p)
		}
	}
	others = others[:min(len(others), s.cfg.DataShards+s.cfg.ParityShards)]
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ManifestTimeout)
	defer cancel()
	var mu sync.Mutex
	var best Record
	found := false
	var wg sync.WaitGroup
	for _, p := range others {
		wg.Go(func() {
			rec, ok, err := s.client.GetRecord(ctx, p.HTTPAddr, id)
			if err != nil {
				s.log.Debug("asking for a blob's manifest", slog.String("id", id), slog.String("node", p.Name), slog.Any("err", err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok && (!found || rec.newer(best)) {
				best, found = rec, true
			}
		})
	}
	wg.Wait()
	if found {
		s.ov.put(id, best, time.Now())
	}
	return best, found
}

// lookup returns the manifest of blob id: the newest this node knows, or,
// when it knows none, the newest the likely holders know.
func (s *Store) lookup(ctx context.Context, id string) (Manifest, error) {
	rec, ok, err := s.localRecord(id)
	if err != nil {
		return Manifest{}, err
	}
	if !ok && rec.Version.IsZero() { // not even a deletion known here
		rec, ok = s.askHolders(ctx, id)
	}
	if !ok || rec.Deleted {
		return Manifest{}, fmt.Errorf("%w: blob %q", ErrNotFound, id)
	}
	return rec.Manifest.clone(), nil
}

// settled returns this node's catalog record of id for a compare-and-set.
// When the overlay holds a newer record (a write made on another node that
// the catalog has not received yet), it first waits, up to
// ManifestTimeout, for the catalog to catch up, so that the new write is
// ordered after that one. A deletion the catalog agrees with (it holds no
// record either, though it may not tell the deletion's version) needs no
// wait.
func (s *Store) settled(ctx context.Context, id string) (Record, bool, error) {
	deadline := time.Now().Add(s.cfg.ManifestTimeout)
	for {
		cat, ok, err := s.catalogRecord(id)
		ov, has := s.ov.get(id)
		agrees := ov.Deleted && !ok
		if !has || !ov.newer(cat) || agrees || time.Now().After(deadline) {
			return cat, ok, err
		}
		select {
		case <-ctx.Done():
			return Record{}, false, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// sweepLoop drops, every second, overlay records the catalog has caught
// up with or that are older than overlayTTL.
func (s *Store) sweepLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
			s.sweepOverlay(time.Now())
		}
	}
}

func (s *Store) sweepOverlay(now time.Time) {
	for id, e := range s.ov.entries() {
		_, v, _ := s.catalog.Get(id)
		caughtUp := v.Compare(e.rec.Version) >= 0
		if caughtUp || now.Sub(e.at) > overlayTTL {
			s.ov.drop(id, e.rec.Version)
		}
	}
}

// writeRecord writes the manifest m under id by compare-and-set on the
// version read, retrying when another write came between, and returns the
// record written and the manifest it replaced (nil if none). An
// unconditional PUT always wins; cond is checked against the manifest
// each attempt would replace, and fails it with ErrPrecondition.
func (s *Store) writeRecord(ctx context.Context, m *Manifest, cond Condition) (Record, *Manifest, error) {
	const tries = 8
	var err error
	for range tries {
		cur, ok, rerr := s.settled(ctx, m.ID)
		if rerr != nil && !errors.Is(rerr, ErrCorrupt) {
			return Record{}, nil, rerr
		}
		var prev, v Version
		if ok {
			prev = cur.Version
		} else {
			cur.Manifest = nil
		}
		if !cond.holds(cur.Manifest) {
			return Record{}, nil, fmt.Errorf("%w: blob %q", ErrPrecondition, m.ID)
		}
		v, err = s.catalog.Put(ctx, m.ID, encodeManifest(m), prev)
		if err == nil {
			var old *Manifest
			if ok && cur.Manifest != nil {
				old = cur.Manifest
			}
			return Record{Version: v, Manifest: m}, old, nil
		}
		if !errors.Is(err, ErrConflict) {
			break
		}
	}
	return Record{}, nil, fmt.Errorf("blob: writing manifest of %q: %w", m.ID, err)
}
