package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The scrubber re-reads every shard this node holds, at most ScrubRate
// bytes per second, and verifies every block against its checksum, so that
// bit rot and lost files are found before a read needs the shard. A shard
// that is missing, cut short or has a damaged header is rebuilt whole from
// the other shards; a block that fails its checksum is rewritten from
// them. The manifest does not change: the shard stays where it was.

// firstScrubDelay is how long after start the first pass waits (at most),
// so that a restarting node recovers before it reads its shards again.
const firstScrubDelay = time.Minute

// scrubLoop runs ScrubOnce so that a pass starts every interval, or at
// once when the previous one took longer, until Close.
func (s *Store) scrubLoop(interval time.Duration) {
	wait := min(interval, firstScrubDelay)
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-time.After(wait):
		}
		start := time.Now()
		if err := s.ScrubOnce(s.bgCtx); err != nil && s.bgCtx.Err() == nil {
			s.log.Warn("blob scrub pass", slog.Any("err", err))
		}
		took := time.Since(start)
		if took > interval {
			s.log.Warn("blob scrub pass took longer than the scrub interval; raise the scrub rate",
				slog.Duration("took", took), slog.Duration("interval", interval))
		}
		wait = max(interval-took, 0)
	}
}

// ownShard is one shard this node holds by the manifests.
type ownShard struct {
	id    string
	index int
	bytes int64 // on disk, headers included
}

// ScrubOnce reads and verifies every shard that a manifest places on this
// node, at no more than ScrubRate bytes per second, and rebuilds or
// rewrites what it finds missing or damaged.
func (s *Store) ScrubOnce(ctx context.Context) error {
	var todo []ownShard
	var total int64
	self := s.members.Self()
	err := s.eachRecord(ctx, func(rec Record) error {
		m := rec.Manifest
		for i, sh := range m.Shards {
			if sh.Node == self {
				n := shardBytes(m)
				todo = append(todo, ownShard{id: m.ID, index: i, bytes: n})
				total += n
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.met.scrubProgress.Set(0)
	lim := newLimiter(s.cfg.ScrubRate)
	var done int64
	var errs []error
	for _, o := range todo {
		if err := s.scrubShard(ctx, lim, o); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
		done += o.bytes
		s.met.scrubProgress.Set(float64(done) / float64(max(total, 1)))
	}
	s.met.scrubProgress.Set(1)
	s.met.scrubPasses.Inc()
	return errors.Join(errs...)
}

// shardBytes is the size of one shard file's blocks of blob m.
func shardBytes(m *Manifest) int64 {
	n := int64(m.Stripes())
	if n == 0 {
		return 0
	}
	return (n-1)*int64(blockHeaderLen+m.BlockBytes()) + int64(blockHeaderLen+m.blockLen(int(n-1)))
}

// scrubShard verifies shard o against the manifest this node has now.
func (s *Store) scrubShard(ctx context.Context, lim *limiter, o ownShard) error {
	rec, ok, err := s.localRecord(o.id)
	if err != nil || !ok || rec.Manifest == nil {
		return nil // deleted or damaged meanwhile
	}
	m := rec.Manifest
	if o.index >= len(m.Shards) || m.Shards[o.index].Node != s.members.Self() {
		return nil // moved meanwhile
	}
	ref := m.ref(o.index)
	bad, whole, err := s.verifyShard(ctx, lim, m, ref)
	if err != nil {
		return err
	}
	switch {
	case whole != "":
		s.met.scrubFound.WithLabelValues(whole).Inc()
		s.log.Warn("scrub: shard must be rebuilt", slog.String("id", m.ID), slog.Int("index", o.index), slog.String("state", whole))
		return s.rebuildLocal(ctx, m.ID, ref)
	case len(bad) > 0:
		s.met.scrubFound.WithLabelValues(HealthCorrupt).Add(float64(len(bad)))
		s.bad.set(ref, len(bad))
		s.log.Warn("scrub: shard blocks failed their checksum", slog.String("id", m.ID), slog.Int("index", o.index), slog.Any("blocks", bad))
		return s.rewriteLocalBlocks(ctx, m, o.index, bad)
	}
	return nil
}

// verifyShard reads every block of a local shard of m through lim. It
// returns the blocks that failed their checksum, or, in whole, why the
// shard must be rebuilt whole (HealthMissing; HealthCorrupt when it is cut
// short or its header is damaged).
func (s *Store) verifyShard(ctx context.Context, lim *limiter, m *Manifest, ref ShardRef) (bad []int, whole string, err error) {
	rc, err := s.local.OpenBlocks(ref, 0, -1)
	switch {
	case errors.Is(err, ErrNoShard):
		return nil, HealthMissing, nil
	case errors.Is(err, ErrCorrupt):
		return nil, HealthCorrupt, nil
	case err != nil:
		return nil, "", err
	}
	defer rc.Close()
	br := blockReader{r: rc, name: fmt.Sprintf("%s/%x/%d", ref.ID, ref.Gen, ref.Index)}
	for b := range m.Stripes() {
		n := m.blockLen(b)
		if err := lim.wait(ctx, blockHeaderLen+n); err != nil {
			return nil, "", err
		}
		_, err := br.read(n)
		s.met.scrubBytes.Add(float64(blockHeaderLen + n))
		switch {
		case errors.Is(err, ErrCorrupt):
			bad = append(bad, b)
		case err != nil:
			return nil, HealthCorrupt, nil // cut short
		}
	}
	return bad, "", nil
}

// rewriteLocalBlocks rewrites the given blocks of local shard index of m
// from the other shards.
func (s *Store) rewriteLocalBlocks(ctx context.Context, m *Manifest, index int, blocks []int) error {
	ref := m.ref(index)
	need := make([]bool, m.Data+m.Parity)
	need[index] = true
	for n, b := range blocks {
		f, err := s.newFetcher(ctx, m, b, b+1)
		if err != nil {
			return err
		}
		f.exclude(index)
		err = f.open()
		var shards [][]byte
		if err == nil {
			shards, err = f.stripe(b, need)
		}
		if err == nil {
			err = s.local.RewriteBlock(ref, b, shards[index])
		}
		f.close()
		if err != nil {
			return &ShardError{Index: index, Node: s.members.Self(), Block: b, Err: err}
		}
		s.bad.set(ref, len(blocks)-n-1)
		s.met.repairedBlock.Inc()
		s.log.Info("repaired shard block", slog.String("id", m.ID), slog.Int("index", index), slog.Int("block", b))
	}
	return nil
}

// rebuildLocal rebuilds local shard ref of blob id whole from the other
// shards, as the manifest this node has says, and commits it in place of
// what is there, unless the manifest no longer places it here.
func (s *Store) rebuildLocal(ctx context.Context, id string, ref ShardRef) error {
	rec, ok, err := s.localRecord(id)
	if err != nil || !ok || rec.Manifest == nil {
		return err
	}
	m := rec.Manifest
	if !s.holds(m, ref) {
		return nil
	}
	f, err := s.newFetcher(ctx, m, 0, m.Stripes())
	if err != nil {
		return err
	}
	defer f.close()
	f.exclude(ref.Index)
	if err := f.open(); err != nil {
		return fmt.Errorf("blob: rebuilding shard %d of %q: %w", ref.Index, id, err)
	}
	w, err := s.local.Create(ref, m.BlockBytes())
	if err != nil {
		return &ShardError{Index: ref.Index, Node: s.members.Self(), Block: -1, Err: err}
	}
	need := make([]bool, m.Data+m.Parity)
	need[ref.Index] = true
	for b := range m.Stripes() {
		shards, err := f.stripe(b, need)
		if err == nil {
			err = w.WriteBlock(shards[ref.Index])
		}
		if err != nil {
			w.Abort()
			return &ShardError{Index: ref.Index, Node: s.members.Self(), Block: b, Err: err}
		}
	}
	if cur, ok, _ := s.localRecord(id); !ok || cur.Manifest == nil || !s.holds(cur.Manifest, ref) {
		w.Abort() // replaced, deleted or moved meanwhile
		return nil
	}
	if err := w.Commit(); err != nil {
		return &ShardError{Index: ref.Index, Node: s.members.Self(), Block: -1, Err: err}
	}
	s.bad.set(ref, 0)
	s.met.rebuiltShards.Inc()
	s.log.Info("rebuilt local shard", slog.String("id", id), slog.Int("index", ref.Index))
	return nil
}

// holds reports whether m places shard ref on this node.
func (s *Store) holds(m *Manifest, ref ShardRef) bool {
	return m.Generation == ref.Gen && ref.Index < len(m.Shards) && m.Shards[ref.Index].Node == s.members.Self()
}

// limiter paces reads to rate bytes per second. It allows no burst longer
// than a second: time spent elsewhere (a rebuild) does not build up credit.
type limiter struct {
	rate  float64
	start time.Time
	n     int64
}

func newLimiter(rate int64) *limiter { return &limiter{rate: float64(rate)} }

// wait accounts for n bytes and sleeps until reading them keeps to rate.
func (l *limiter) wait(ctx context.Context, n int) error {
	now := time.Now()
	if l.start.IsZero() || now.Sub(l.due()) > time.Second {
		l.start, l.n = now, 0
	}
	l.n += int64(n)
	d := time.Until(l.due())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (l *limiter) due() time.Time {
	return l.start.Add(time.Duration(float64(l.n) / l.rate * float64(time.Second)))
}
