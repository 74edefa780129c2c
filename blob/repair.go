package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// repairLoop runs RepairOnce every interval until Close.
func (s *Store) repairLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
			if err := s.RepairOnce(s.bgCtx); err != nil && s.bgCtx.Err() == nil {
				s.log.Warn("blob repair pass", slog.Any("err", err))
			}
		}
	}
}

// RepairOnce runs one repair pass:
//   - removes this node's temporary shard files older than CleanupGrace;
//   - rebuilds, from the other shards, the shards that manifests place on
//     this node and that it has no file for (a disk swapped, files
//     removed);
//   - for every blob this node leads (it ranks first among the live nodes
//     for the blob's id): rebuilds the shards whose holder has been absent
//     for RebuildAfter onto other live nodes, moves shards off nodes that
//     hold several onto live nodes that hold none (a blob written while
//     nodes were down spreads onto them when they return), and records
//     the change by compare-and-set; and counts the blob in the health
//     gauge;
//   - removes this node's shard files that no manifest has named for
//     CleanupGrace (the blob was deleted or replaced while the node was
//     away, or the shard was moved elsewhere).
func (s *Store) RepairOnce(ctx context.Context) error {
	now := s.cfg.Now()
	var errs []error
	if _, err := s.local.RemoveStale(now.Add(-s.cfg.CleanupGrace)); err != nil {
		errs = append(errs, err)
	}
	live := s.liveMap()
	s.forgetReturned(live)
	present, err := s.presentShards()
	if err != nil {
		errs = append(errs, err)
	}
	sv := s.newSurvey(ctx, live)
	health := map[string]int{HealthHealthy: 0, HealthDegraded: 0, HealthUnreadable: 0}
	err = s.eachRecord(ctx, func(rec Record) error {
		m := rec.Manifest
		if present != nil {
			if err := s.rebuildMissingLocal(ctx, rec, present); err != nil {
				errs = append(errs, err)
			}
		}
		if !s.leads(m.ID, live) {
			return nil
		}
		health[sv.health(m)]++
		if err := s.repairBlob(ctx, rec, live, now); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for h, n := range health {
		s.met.blobs.WithLabelValues(h).Set(float64(n))
	}
	if err := s.removeOrphans(now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// eachRecord calls f with the catalog record of every blob, skipping those
// with a newer announced record the catalog has not caught up with (a pass
// acts on settled records only) and damaged ones.
func (s *Store) eachRecord(ctx context.Context, f func(Record) error) error {
	after := ""
	for {
		ids, next := s.catalog.List("", after, 1000)
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, ok, err := s.catalogRecord(id)
			if !ok || err != nil {
				continue
			}
			if ov, has := s.ov.get(id); has && ov.newer(rec) {
				continue
			}
			if err := f(rec); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// presentShards lists the committed shards of this node.
func (s *Store) presentShards() (map[ShardRef]bool, error) {
	infos, err := s.local.List()
	if err != nil {
		return nil, err
	}
	out := make(map[ShardRef]bool, len(infos))
	for _, in := range infos {
		if !in.Temp && in.Ref.ID != "" {
			out[in.Ref] = true
		}
	}
	return out, nil
}

// rebuildMissingLocal rebuilds the shards of rec's blob that are placed
// on this node and absent from present.
func (s *Store) rebuildMissingLocal(ctx context.Context, rec Record, present map[ShardRef]bool) error {
	m := rec.Manifest
	self := s.members.Self()
	var errs []error
	for i, sh := range m.Shards {
		if sh.Node != self || present[m.ref(i)] {
			continue
		}
		if _, err := s.local.Stat(m.ref(i)); err == nil {
			continue // committed since the listing
		}
		s.met.scrubFound.WithLabelValues(HealthMissing).Inc()
		if err := s.rebuildLocal(ctx, m.ID, m.ref(i)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forgetReturned drops the absence record of nodes that are live again.
func (s *Store) forgetReturned(live map[string]Peer) {
	s.absentMu.Lock()
	defer s.absentMu.Unlock()
	for name := range s.absentSince {
		if _, ok := live[name]; ok {
			delete(s.absentSince, name)
		}
	}
}

// absentFor notes that node is absent at now and returns since how long.
func (s *Store) absentFor(node string, now time.Time) time.Duration {
	s.absentMu.Lock()
	defer s.absentMu.Unlock()
	since, ok := s.absentSince[node]
	if !ok {
		s.absentSince[node] = now
		return 0
	}
	return now.Sub(since)
}

// leads reports whether this node ranks first for id among the live nodes.
func (s *Store) leads(id string, live map[string]Peer) bool {
	peers := make([]Peer, 0, len(live))
	for _, p := range live {
		peers = append(peers, p)
	}
	r := rank(id, peers)
	return len(r) > 0 && r[0].Name == s.members.Self()
}

// move is one shard to write on a new holder.
type move struct {
	index int
	to    Peer
}

// repairBlob rebuilds or moves the shards of rec's blob that plan says.
func (s *Store) repairBlob(ctx context.Context, rec Record, live map[string]Peer, now time.Time) error {
	moves := s.plan(rec.Manifest, live, now)
	if len(moves) == 0 {
		return nil
	}
	return s.rebuild(ctx, rec, moves, live)
}

// plan chooses the shards of m to write on new holders: those whose
// holder has been absent for RebuildAfter, onto live nodes holding no
// shard of m where there are any (else the live node holding the fewest);
// then, while a live node holds several shards and another live node
// holds none, one of the former's shards onto the latter, in rendezvous
// order.
func (s *Store) plan(m *Manifest, live map[string]Peer, now time.Time) []move {
	count := map[string]int{}
	for _, sh := range m.Shards {
		count[sh.Node]++
	}
	peers := make([]Peer, 0, len(live))
	for _, p := range live {
		peers = append(peers, p)
	}
	ranked := rank(m.ID, peers)
	if len(ranked) == 0 {
		return nil
	}
	var moves []move
	for i, sh := range m.Shards {
		if _, ok := live[sh.Node]; ok || s.absentFor(sh.Node, now) < s.cfg.RebuildAfter {
			continue
		}
		count[sh.Node]--
		sort.SliceStable(ranked, func(a, b int) bool { return count[ranked[a].Name] < count[ranked[b].Name] })
		moves = append(moves, move{index: i, to: ranked[0]})
		count[ranked[0].Name]++
	}
	moved := map[int]bool{}
	for _, mv := range moves {
		moved[mv.index] = true
	}
	for _, free := range rank(m.ID, peers) {
		if count[free.Name] > 0 {
			continue
		}
		i := crowdedShard(m, live, count, moved)
		if i < 0 {
			break
		}
		count[m.Shards[i].Node]--
		count[free.Name]++
		moved[i] = true
		moves = append(moves, move{index: i, to: free})
	}
	return moves
}

// crowdedShard returns the last shard of m, not moved yet, on a live node
// holding more than one shard, or -1.
func crowdedShard(m *Manifest, live map[string]Peer, count map[string]int, moved map[int]bool) int {
	for i := len(m.Shards) - 1; i >= 0; i-- {
		node := m.Shards[i].Node
		if _, ok := live[node]; ok && !moved[i] && count[node] > 1 {
			return i
		}
	}
	return -1
}

// rebuild writes the shards of rec's blob that moves name onto their new
// holders, stripe by stripe from the others (reading the shard itself
// where it can be had), and records them in the manifest.
func (s *Store) rebuild(ctx context.Context, rec Record, moves []move, live map[string]Peer) error {
	m := rec.Manifest
	f, err := s.newFetcher(ctx, m, 0, m.Stripes())
	if err != nil {
		return err
	}
	defer f.close()
	f.onCorrupt = s.repairBlockLater(f)
	if err := f.open(); err != nil {
		return fmt.Errorf("blob: rebuilding %q: %w", m.ID, err)
	}
	writers := make([]ShardWriter, 0, len(moves))
	abort := func() {
		for _, w := range writers {
			w.Abort()
		}
	}
	for _, mv := range moves {
		w, err := s.create(ctx, mv.to, m.ref(mv.index), m.BlockBytes())
		if err != nil {
			abort()
			return &ShardError{Index: mv.index, Node: mv.to.Name, Block: -1, Err: err}
		}
		writers = append(writers, w)
	}
	if err := s.copyRebuilt(f, m, moves, writers); err != nil {
		abort()
		return err
	}
	for j, w := range writers {
		if err := w.Commit(); err != nil {
			for _, w := range writers[j+1:] {
				w.Abort()
			}
			s.removeRebuilt(ctx, m.ID, m.Generation, moves)
			return &ShardError{Index: moves[j].index, Node: moves[j].to.Name, Block: -1, Err: err}
		}
	}
	return s.recordRebuilt(ctx, rec, moves, live)
}

// copyRebuilt writes each stripe's shards named by moves to their writers.
func (s *Store) copyRebuilt(f *fetcher, m *Manifest, moves []move, writers []ShardWriter) error {
	need := make([]bool, m.Data+m.Parity)
	for _, mv := range moves {
		need[mv.index] = true
	}
	for b := 0; b < m.Stripes(); b++ {
		shards, err := f.stripe(b, need)
		if err != nil {
			return fmt.Errorf("blob: rebuilding %q: %w", m.ID, err)
		}
		for j, mv := range moves {
			if err := writers[j].WriteBlock(shards[mv.index]); err != nil {
				return &ShardError{Index: mv.index, Node: mv.to.Name, Block: b, Err: err}
			}
		}
	}
	return nil
}

// recordRebuilt points the manifest at the new holders by compare-and-set
// on the record the repair started from. When the record has changed
// meanwhile (the blob was replaced, deleted or repaired by another node),
// the repair lost: it removes the shards it wrote, but for those the
// current manifest names. The shards moved off live holders are removed
// from them once every live node has the new manifest.
func (s *Store) recordRebuilt(ctx context.Context, rec Record, moves []move, live map[string]Peer) error {
	if s.beforeRecord != nil {
		s.beforeRecord(rec.Manifest.ID)
	}
	m := rec.Manifest.clone()
	old := rec.Manifest.holders()
	for _, mv := range moves {
		m.Shards[mv.index].Node = mv.to.Name
	}
	m.Tolerates = tolerates(m.holders(), m.Data)
	v, err := s.catalog.Put(ctx, m.ID, encodeManifest(&m), rec.Version)
	if err != nil {
		s.removeRebuilt(ctx, m.ID, m.Generation, s.unnamed(m.ID, m.Generation, moves))
		if errors.Is(err, ErrConflict) {
			s.log.Info("blob changed during its repair; the repair's shards are removed", slog.String("id", m.ID))
			return nil
		}
		return fmt.Errorf("blob: recording rebuilt shards of %q: %w", m.ID, err)
	}
	for _, mv := range moves {
		s.log.Info("rebuilt shard", slog.String("id", m.ID), slog.Int("index", mv.index),
			slog.String("from", old[mv.index]), slog.String("to", mv.to.Name))
	}
	s.met.rebuiltShards.Add(float64(len(moves)))
	if s.publish(ctx, m.ID, Record{Version: v, Manifest: &m}) {
		var wg sync.WaitGroup
		for _, mv := range moves {
			if p, ok := live[old[mv.index]]; ok && p.Name != mv.to.Name {
				wg.Go(func() {
					if err := s.removeShard(ctx, p, m.ref(mv.index)); err != nil {
						s.log.Warn("removing moved shard", slog.String("id", m.ID), slog.Int("index", mv.index), slog.Any("err", err))
					}
				})
			}
		}
		wg.Wait()
	}
	return nil
}

// unnamed returns the moves whose shard the current manifest of id does
// not place on the move's target: those a losing repair may remove.
func (s *Store) unnamed(id string, gen uint64, moves []move) []move {
	rec, ok, err := s.localRecord(id)
	if err != nil {
		return nil // a damaged record is no proof
	}
	var out []move
	for _, mv := range moves {
		if !ok || rec.Manifest == nil || rec.Manifest.Generation != gen ||
			rec.Manifest.Shards[mv.index].Node != mv.to.Name {
			out = append(out, mv)
		}
	}
	return out
}

// removeRebuilt removes the shards of generation gen of blob id that
// moves wrote.
func (s *Store) removeRebuilt(ctx context.Context, id string, gen uint64, moves []move) {
	for _, mv := range moves {
		ref := ShardRef{ID: id, Gen: gen, Index: mv.index}
		if err := s.removeShard(ctx, mv.to, ref); err != nil {
			s.log.Warn("removing rebuilt shard", slog.String("id", id), slog.Int("index", mv.index), slog.Any("err", err))
		}
	}
}
