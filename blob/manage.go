package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Lookup returns the manifest of blob id as this node knows it, asking
// the likely holders when it knows none (a blob stored a moment ago on
// another node). It does not ask for the shards' health.
func (s *Store) Lookup(ctx context.Context, id string) (Manifest, error) {
	if err := validateID(id); err != nil {
		return Manifest{}, err
	}
	return s.lookup(ctx, id)
}

// Manifest returns the manifest of blob id with its health now: each
// shard's state as its holder reports it (see Shard.Health), the blob's
// health, and in Tolerates how many node losses it survives given the
// shards that are sound.
func (s *Store) Manifest(ctx context.Context, id string) (Manifest, error) {
	m, err := s.Lookup(ctx, id)
	if err != nil {
		return Manifest{}, err
	}
	states := s.shardStates(ctx, &m)
	for i := range m.Shards {
		m.Shards[i].Health = states[i]
	}
	m.Health, m.Tolerates = blobHealth(&m, states)
	return m, nil
}

// Delete removes the manifest of blob id by compare-and-set on the record
// it read, tells every other live node, then removes the shards from every
// live holder; a holder that is down removes them itself when it returns
// (see RepairOnce). A missing blob is ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.DeleteIf(ctx, id, Condition{})
}

// DeleteIf is Delete when cond holds for the blob it removes, and
// ErrPrecondition (nothing changed) when it does not.
func (s *Store) DeleteIf(ctx context.Context, id string, cond Condition) error {
	if err := validateID(id); err != nil {
		return err
	}
	if _, ok, _ := s.localRecord(id); !ok {
		s.askHolders(ctx, id) // a blob stored elsewhere that this node has not heard of
	}
	const tries = 8
	for range tries {
		cur, ok, err := s.settled(ctx, id)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return err
		}
		if !ok {
			cur.Manifest = nil
		}
		if !cond.holds(cur.Manifest) {
			return fmt.Errorf("%w: blob %q", ErrPrecondition, id)
		}
		if !ok {
			return fmt.Errorf("%w: blob %q", ErrNotFound, id)
		}
		v, err := s.catalog.Delete(ctx, id, cur.Version)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("blob: deleting manifest of %q: %w", id, err)
		}
		gone := Record{Version: v, Deleted: true}
		// The catalog may not tell a deletion's version: keep it here too,
		// above any older record announced to this node.
		s.ov.put(id, gone, time.Now())
		s.publish(ctx, id, gone)
		if cur.Manifest != nil {
			s.removeShards(ctx, id, cur.Manifest.Generation, cur.Manifest.holders())
		}
		s.log.Debug("blob deleted", slog.String("id", id))
		return nil
	}
	return fmt.Errorf("blob: deleting manifest of %q: %w", id, ErrConflict)
}

// Default and largest page of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 10000
)

// List returns up to limit manifests (default 100, at most 10000) of blobs
// whose ids sort after after, in byte order, and the id to continue after
// ("" when done).
func (s *Store) List(after string, limit int) ([]Manifest, string) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	ids, next := s.catalog.List("", after, limit)
	out := make([]Manifest, 0, len(ids))
	for _, id := range ids {
		m, err := s.getManifest(id)
		if err != nil {
			continue // deleted meanwhile, or damaged
		}
		out = append(out, m)
	}
	return out, next
}
