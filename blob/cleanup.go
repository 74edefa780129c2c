package blob

import (
	"log/slog"
	"sync"
	"time"
)

// orphanSeen remembers since when each local shard file has been found
// named by no manifest, so that a file is removed only once it has been
// an orphan for CleanupGrace: the old shards of a replaced blob stay
// readable for a node that has not heard of the new manifest yet.
type orphanSeen struct {
	mu sync.Mutex
	m  map[ShardRef]time.Time
}

// removeOrphans removes local shard files that no manifest this node knows
// (its catalog's or an announced one) has named for CleanupGrace, and that
// were written before CleanupGrace ago.
func (s *Store) removeOrphans(now time.Time) error {
	infos, err := s.local.List()
	if err != nil {
		return err
	}
	self := s.members.Self()
	cutoff := now.Add(-s.cfg.CleanupGrace)
	s.orphans.mu.Lock()
	defer s.orphans.mu.Unlock()
	seen := make(map[ShardRef]time.Time, len(s.orphans.m))
	for _, info := range infos {
		ref := info.Ref
		if info.Temp || ref.ID == "" {
			continue
		}
		rec, ok, err := s.localRecord(ref.ID)
		if err != nil {
			continue // a damaged manifest is no proof
		}
		m := rec.Manifest
		if ok && m != nil && m.Generation == ref.Gen && ref.Index < len(m.Shards) && m.Shards[ref.Index].Node == self {
			continue
		}
		since, known := s.orphans.m[ref]
		if !known {
			since = now
		}
		if since.After(cutoff) || !info.ModTime.Before(cutoff) {
			seen[ref] = since
			continue
		}
		if err := s.local.Remove(ref); err != nil {
			s.orphans.m = seen
			return err
		}
		s.met.removedOrphan.Inc()
		s.log.Info("removed orphan shard", slog.String("id", ref.ID), slog.Int("index", ref.Index))
	}
	s.orphans.m = seen
	return nil
}
