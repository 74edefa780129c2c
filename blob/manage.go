package blob

import (
	"context"
	"fmt"
	"log/slog"
)

// Manifest returns the manifest of blob id with each shard's health.
func (s *Store) Manifest(id string) (Manifest, error) {
	if err := validateID(id); err != nil {
		return Manifest{}, err
	}
	m, err := s.getManifest(id)
	if err != nil {
		return Manifest{}, err
	}
	live := s.liveMap()
	for i := range m.Shards {
		m.Shards[i].Health = HealthDown
		if _, ok := live[m.Shards[i].Node]; ok {
			m.Shards[i].Health = HealthOK
		}
	}
	return m, nil
}

// Delete removes the manifest of blob id, then its shards from every live
// holder; a holder that is down removes them itself when it returns (see
// RepairOnce). A missing blob is ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	m, err := s.getManifest(id)
	if err != nil {
		return err
	}
	if err := s.catalog.Delete(ctx, id); err != nil {
		return fmt.Errorf("blob: deleting manifest of %q: %w", id, err)
	}
	s.removeShards(ctx, id, m.Generation, m.holders())
	s.log.Debug("blob deleted", slog.String("id", id))
	return nil
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
