package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// repairLoop runs RepairOnce every interval until Close.
func (s *Store) repairLoop(interval time.Duration) {
	defer s.bg.Done()
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
//   - for every blob this node leads (it ranks first among the live nodes
//     for the blob's id), rebuilds the shards whose holder has been absent
//     for RebuildAfter onto other live nodes and updates the manifest;
//   - removes this node's shard files older than CleanupGrace that no
//     manifest names (the blob was deleted or replaced while the node was
//     away, or the shard was rebuilt elsewhere).
func (s *Store) RepairOnce(ctx context.Context) error {
	now := s.cfg.Now()
	var errs []error
	if _, err := s.local.RemoveStale(now.Add(-s.cfg.CleanupGrace)); err != nil {
		errs = append(errs, err)
	}
	live := s.liveMap()
	s.forgetReturned(live)
	after := ""
	for {
		ids, next := s.catalog.List("", after, 1000)
		for _, id := range ids {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m, err := s.getManifest(id)
			if err != nil {
				continue
			}
			if err := s.repairBlob(ctx, m, live, now); err != nil {
				errs = append(errs, err)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if err := s.removeOrphans(now); err != nil {
		errs = append(errs, err)
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

// repairBlob rebuilds the shards of m whose holders have been gone too
// long, when this node leads m.
func (s *Store) repairBlob(ctx context.Context, m Manifest, live map[string]Peer, now time.Time) error {
	var missing []int
	for i, sh := range m.Shards {
		if _, ok := live[sh.Node]; !ok && s.absentFor(sh.Node, now) >= s.cfg.RebuildAfter {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 || !s.leads(m.ID, live) {
		return nil
	}
	return s.rebuild(ctx, m, missing, live)
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

// pickTargets chooses a new live holder for each missing shard: live
// nodes holding no shard of the blob first, in rendezvous order; when there
// are none left, the live node holding the fewest.
func pickTargets(m Manifest, missing []int, live map[string]Peer) []Peer {
	count := map[string]int{}
	for _, sh := range m.Shards {
		count[sh.Node]++
	}
	for _, i := range missing {
		count[m.Shards[i].Node]--
	}
	peers := make([]Peer, 0, len(live))
	for _, p := range live {
		peers = append(peers, p)
	}
	ranked := rank(m.ID, peers)
	out := make([]Peer, len(missing))
	for j := range missing {
		sort.SliceStable(ranked, func(a, b int) bool { return count[ranked[a].Name] < count[ranked[b].Name] })
		out[j] = ranked[0]
		count[ranked[0].Name]++
	}
	return out
}

// rebuild reconstructs the missing shards of m stripe by stripe from the
// others, writes them to new holders and records them in the manifest.
func (s *Store) rebuild(ctx context.Context, m Manifest, missing []int, live map[string]Peer) error {
	if len(live) == 0 {
		return nil
	}
	targets := pickTargets(m, missing, live)
	f, err := s.newFetcher(ctx, &m, 0, m.Stripes())
	if err != nil {
		return err
	}
	defer f.close()
	f.onCorrupt = s.repairBlockLater(f)
	if err := f.open(); err != nil {
		return fmt.Errorf("blob: rebuilding %q: %w", m.ID, err)
	}
	writers := make([]ShardWriter, 0, len(missing))
	abort := func() {
		for _, w := range writers {
			w.Abort()
		}
	}
	for j, i := range missing {
		w, err := s.create(ctx, targets[j], m.ref(i), m.BlockBytes())
		if err != nil {
			abort()
			return &ShardError{Index: i, Node: targets[j].Name, Block: -1, Err: err}
		}
		writers = append(writers, w)
	}
	if err := s.copyRebuilt(f, &m, missing, targets, writers); err != nil {
		abort()
		return err
	}
	for j, w := range writers {
		if err := w.Commit(); err != nil {
			for _, w := range writers[j+1:] {
				w.Abort()
			}
			s.removeRebuilt(ctx, m, missing, targets)
			return &ShardError{Index: missing[j], Node: targets[j].Name, Block: -1, Err: err}
		}
	}
	return s.recordRebuilt(ctx, m, missing, targets)
}

// copyRebuilt writes each stripe's rebuilt shards to their writers.
func (s *Store) copyRebuilt(f *fetcher, m *Manifest, missing []int, targets []Peer, writers []ShardWriter) error {
	need := make([]bool, m.Data+m.Parity)
	for _, i := range missing {
		need[i] = true
	}
	for b := 0; b < m.Stripes(); b++ {
		shards, err := f.stripe(b, need)
		if err != nil {
			return fmt.Errorf("blob: rebuilding %q: %w", m.ID, err)
		}
		for j, i := range missing {
			if err := writers[j].WriteBlock(shards[i]); err != nil {
				return &ShardError{Index: i, Node: targets[j].Name, Block: b, Err: err}
			}
		}
	}
	return nil
}

// recordRebuilt points the manifest at the new holders, unless the blob
// was replaced or deleted meanwhile (then the new shards are removed).
func (s *Store) recordRebuilt(ctx context.Context, m Manifest, missing []int, targets []Peer) error {
	cur, err := s.getManifest(m.ID)
	if err != nil || cur.Generation != m.Generation {
		s.removeRebuilt(ctx, m, missing, targets)
		return nil
	}
	for j, i := range missing {
		s.log.Info("rebuilt shard", slog.String("id", m.ID), slog.Int("index", i),
			slog.String("from", cur.Shards[i].Node), slog.String("to", targets[j].Name))
		cur.Shards[i].Node = targets[j].Name
	}
	cur.Tolerates = tolerates(cur.holders(), cur.Data)
	if err := s.catalog.Put(ctx, m.ID, encodeManifest(&cur)); err != nil {
		s.removeRebuilt(ctx, m, missing, targets)
		return fmt.Errorf("blob: recording rebuilt shards of %q: %w", m.ID, err)
	}
	s.met.rebuiltShards.Add(float64(len(missing)))
	return nil
}

func (s *Store) removeRebuilt(ctx context.Context, m Manifest, missing []int, targets []Peer) {
	for j, i := range missing {
		if err := s.removeShard(ctx, targets[j], m.ref(i)); err != nil {
			s.log.Warn("removing rebuilt shard", slog.String("id", m.ID), slog.Int("index", i), slog.Any("err", err))
		}
	}
}

// removeOrphans removes local shard files older than the grace period that
// no manifest names.
func (s *Store) removeOrphans(now time.Time) error {
	infos, err := s.local.List()
	if err != nil {
		return err
	}
	self := s.members.Self()
	cutoff := now.Add(-s.cfg.CleanupGrace)
	for _, info := range infos {
		ref := info.Ref
		if info.Temp || ref.ID == "" || !info.ModTime.Before(cutoff) {
			continue
		}
		m, err := s.getManifest(ref.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			continue // a damaged manifest is no proof
		}
		named := err == nil && m.Generation == ref.Gen && ref.Index < len(m.Shards) && m.Shards[ref.Index].Node == self
		if named {
			continue
		}
		if err := s.local.Remove(ref); err != nil {
			return err
		}
		s.met.removedOrphan.Inc()
		s.log.Info("removed orphan shard", slog.String("id", ref.ID), slog.Int("index", ref.Index))
	}
	return nil
}
