package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/disperse/disperse/engine"
)

// Write is a client's write of one key, before the node stamps its version.
type Write struct {
	Key string
	// Value is read during the call only: the store keeps a copy, and what
	// the node sends to peers and returns is that copy. A caller may reuse
	// the buffer once Put or PutBatch returns.
	Value       []byte
	ContentType string
	// ExpiresAt is the absolute expiry in Unix nanoseconds; 0 means never.
	ExpiresAt int64
	// Local: apply on this node only (X-Is-Sync); never sent to peers.
	Local bool
	// Delete makes the write a tombstone: Value, ContentType and ExpiresAt
	// are ignored.
	Delete bool
	// If makes the write conditional on what this node holds for Key; it
	// is checked and the write applied atomically (ErrPrecondition).
	If Precondition
}

// Precondition is what a conditional write requires of the key's visible
// entry on the node that takes the write (HTTP If-Match / If-None-Match,
// Redis NX/XX, a manifest's compare-and-set). The zero value requires
// nothing.
type Precondition struct {
	// Match, when not zero: the visible entry has exactly this version.
	Match engine.Version
	// NotMatch, when not zero: the visible entry, if any, has another version.
	NotMatch engine.Version
	// Exists: the key has a visible entry.
	Exists bool
	// Absent: the key has no visible entry (absent, deleted or expired).
	Absent bool
}

// Holds reports whether the visible entry e (ok: there is one) meets p.
func (p Precondition) Holds(e engine.Entry, ok bool) bool {
	switch {
	case p.Exists && !ok, p.Absent && ok:
		return false
	case !p.Match.IsZero() && (!ok || e.Version != p.Match):
		return false
	case !p.NotMatch.IsZero() && ok && e.Version == p.NotMatch:
		return false
	}
	return true
}

// writeStripes is how many locks serialise local writes by key hash.
const writeStripes = 4096

// Put stamps w with a new version, makes it durable on this node and, unless
// w.Local, queues it for every live peer. It returns the entry as stored;
// its version is above every version of the key this node held.
func (n *Node) Put(ctx context.Context, w Write) (engine.Entry, error) {
	e := engine.Entry{Key: w.Key, Local: w.Local, Deleted: w.Delete}
	if !w.Delete {
		e.Value, e.ContentType, e.ExpiresAt = w.Value, w.ContentType, w.ExpiresAt
	}
	return n.write(ctx, e, w.If)
}

// Delete writes a tombstone for key (node-local with local).
func (n *Node) Delete(ctx context.Context, key string, local bool) (engine.Entry, error) {
	return n.Put(ctx, Write{Key: key, Local: local, Delete: true})
}

// maxWriteTries bounds how often a local write is stamped again because a
// peer's newer version of the key arrived between stamping and applying.
const maxWriteTries = 8

// write checks the precondition, stamps the entry above the key's newest
// version and applies it, under the key's stripe lock so that concurrent
// local writes of one key are ordered; a peer's entry that lands in
// between makes it stamp again. A 200 therefore always means the write
// took effect on this node.
func (n *Node) write(ctx context.Context, e engine.Entry, cond Precondition) (engine.Entry, error) {
	if err := ctx.Err(); err != nil {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, err)
	}
	if n.isClosed() {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, ErrClosed)
	}
	mu := &n.stripes[keyHash(e.Key)%writeStripes]
	mu.Lock()
	defer mu.Unlock()
	if cond != (Precondition{}) {
		cur, ok := n.store.Get(e.Key)
		if !cond.Holds(cur, ok) {
			return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, ErrPrecondition)
		}
	}
	e, err := n.stampAndApply(e)
	if err != nil {
		return engine.Entry{}, err
	}
	if !e.Local {
		n.rep.fanOut(e)
	}
	return e, nil
}

// PutBatch makes writes of distinct keys, none with a precondition, as Put
// makes each, but in one store batch: one log append and one commit for
// all of them (a pipeline's run of Redis SETs). It returns each write's
// entry or error, in order; a batch the store refuses fails every write.
func (n *Node) PutBatch(ctx context.Context, ws []Write) ([]engine.Entry, []error) {
	ents := make([]engine.Entry, len(ws))
	errs := make([]error, len(ws))
	fail := func(err error) ([]engine.Entry, []error) {
		for i := range errs {
			errs[i] = err
		}
		return ents, errs
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("cluster: write batch: %w", err))
	}
	if n.isClosed() {
		return fail(fmt.Errorf("cluster: write batch: %w", ErrClosed))
	}
	stripes := make([]int, 0, len(ws))
	keys := make(map[string]bool, len(ws))
	for i, w := range ws {
		switch {
		case w.If != (Precondition{}):
			return fail(fmt.Errorf("cluster: write batch: %q has a precondition", w.Key))
		case keys[w.Key]:
			return fail(fmt.Errorf("cluster: write batch: %q twice", w.Key))
		}
		keys[w.Key] = true
		e := engine.Entry{Key: w.Key, Local: w.Local, Deleted: w.Delete}
		if !w.Delete {
			e.Value, e.ContentType, e.ExpiresAt = w.Value, w.ContentType, w.ExpiresAt
		}
		ents[i] = e
		stripes = append(stripes, int(keyHash(w.Key)%writeStripes))
	}
	// Stripes locked in ascending order: no deadlock with another batch,
	// and a single write holds one.
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		n.stripes[s].Lock()
	}
	defer func() {
		for _, s := range stripes {
			n.stripes[s].Unlock()
		}
	}()
	for i := range ents {
		v, err := n.stamp(ents[i].Key)
		if err != nil {
			return fail(err)
		}
		ents[i].Version = v
	}
	won, err := n.store.ApplyBatch(ents)
	if err != nil {
		return fail(fmt.Errorf("cluster: write batch: %w", err))
	}
	for i := range ents {
		// A peer's newer entry that landed between stamping and applying
		// beat this one: stamp it again, as write does.
		if won < len(ents) {
			if head, _ := n.store.Head(ents[i].Key); head != ents[i].Version {
				ents[i], errs[i] = n.stampAndApply(ents[i])
			}
		}
		if errs[i] == nil && !ents[i].Local {
			n.rep.fanOut(ents[i])
		}
	}
	return ents, errs
}

// stampAndApply stamps e above its key's newest version and applies it,
// again while a peer's newer entry lands in between (at most
// maxWriteTries times); the key's stripe lock is held.
func (n *Node) stampAndApply(e engine.Entry) (engine.Entry, error) {
	for try := 0; try <= maxWriteTries; try++ {
		v, err := n.stamp(e.Key)
		if err != nil {
			return engine.Entry{}, err
		}
		e.Version = v
		batch := []engine.Entry{e}
		won, err := n.store.ApplyBatch(batch)
		if err != nil {
			return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, err)
		}
		if won == 1 {
			return batch[0], nil // its value now the store's copy
		}
	}
	return engine.Entry{}, fmt.Errorf("cluster: write %q: newer versions kept arriving", e.Key)
}

// stamp returns a version for a local write of key, newer than the key's
// newest version: the clock's reading when that is above every version the
// store has seen, which spares a lookup of the key; else (the store holds
// versions beyond the clock: from before the wall clock stepped back, or
// further ahead than the skew bound lets the clock follow) one past the
// key's newest. Either way a peer's entry applied at the same moment can
// beat it: callers check that the write won, and stamp again.
func (n *Node) stamp(key string) (engine.Version, error) {
	if v := n.clock.Version(); n.store.AboveMax(v) {
		return v, nil
	}
	head, _ := n.store.Head(key)
	v, ok := n.clock.After(head)
	if !ok {
		return engine.Version{}, fmt.Errorf("cluster: write %q: the key holds the largest version there is", key)
	}
	return v, nil
}

// Get returns the visible entry of key.
func (n *Node) Get(key string) (engine.Entry, bool) { return n.store.Get(key) }

// List lists visible keys as Store.List does.
func (n *Node) List(prefix, after string, limit int) ([]string, string) {
	return n.store.List(prefix, after, limit)
}

// applyRemote applies entries from a peer: each must have a key and a
// version within MaxClockSkew of this node's clock; the rest are refused,
// counted and logged.
func (n *Node) applyRemote(h header, ents []engine.Entry, repair bool) {
	if h.wallMS != 0 {
		n.notePeerClock(h)
	}
	n.metrics.entriesReceived.Add(float64(len(ents)))
	keep := ents[:0]
	for _, e := range ents {
		e.Local = false
		switch {
		case e.Key == "":
			n.reject(h.from, "bad_entry", "an entry without a key")
		case e.Evicted:
			n.reject(h.from, "bad_entry", fmt.Sprintf("key %q came as an eviction stub, which is never sent", truncate(e.Key, 64)))
		case len(e.Key) > n.cfg.MaxKeyBytes || len(e.Value) > n.cfg.MaxValueBytes || len(e.ContentType) > maxContentTypeBytes:
			n.reject(h.from, "too_large", fmt.Sprintf("key %q of %d bytes with a value of %d bytes is over the limits",
				truncate(e.Key, 64), len(e.Key), len(e.Value)))
		case !n.clock.Admit(e.Version.Time):
			n.reject(h.from, "clock_skew", fmt.Sprintf("key %q has a version %v ahead of this node's clock (at most %v allowed)",
				truncate(e.Key, 64), n.clock.Ahead(e.Version.Time).Round(time.Millisecond), n.cfg.MaxClockSkew))
		default:
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return
	}
	won, err := n.store.ApplyBatch(keep)
	if err != nil {
		n.log.Error("applying entries from a peer", "peer", h.from, "entries", len(keep), "err", err)
		return
	}
	if repair {
		n.metrics.aeRepaired.Add(float64(won))
	}
	if f := n.onApplied.Load(); f != nil {
		(*f)(keep)
	}
}

// notePeerClock records how far a peer's clock is from this node's and
// names a peer beyond MaxClockSkew in a log line.
func (n *Node) notePeerClock(h header) {
	off := time.Duration(h.wallMS-n.cfg.Now().UnixMilli()) * time.Millisecond
	n.metrics.peerClock.WithLabelValues(h.from).Set(off.Seconds())
	if off > n.cfg.MaxClockSkew || -off > n.cfg.MaxClockSkew {
		if n.rejectLog.allow("skew/"+h.from, n.cfg.Now()) {
			n.log.Warn("a peer's clock is off by more than the allowed skew", "peer", h.from,
				"offset", off, "max_clock_skew", n.cfg.MaxClockSkew)
		}
	}
}

// reject counts an entry or message refused from a peer and logs it, at
// most once a minute per peer and reason.
func (n *Node) reject(peer, reason, what string) {
	n.metrics.rejected.WithLabelValues(reason).Inc()
	if n.rejectLog.allow(reason+"/"+peer, n.cfg.Now()) {
		n.log.Warn("refused from a peer", "peer", peer, "reason", reason, "detail", what)
	}
}

// fresh reports whether the node was in sync with the cluster within the
// last TombstoneTTL (see doc.go, "Tombstones").
func (n *Node) fresh() bool {
	t := n.id.lastSynced()
	return !t.IsZero() && n.cfg.Now().Sub(t) <= n.cfg.TombstoneTTL
}

// horizon is the clock reading before which a tombstone may have been
// collected: now - TombstoneTTL.
func (n *Node) horizon() uint64 {
	ms := n.cfg.Now().Add(-n.cfg.TombstoneTTL).UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms) << counterBits
}

// purge removes entries a stale node holds but the cluster no longer does:
// a tombstone just above each, older than the horizon, so the store
// collects it at once and a restart does not bring the entry back.
func (n *Node) purge(ents []engine.Entry) error {
	tombs := make([]engine.Entry, len(ents))
	for i, e := range ents {
		tombs[i] = engine.Entry{Key: e.Key, Deleted: true, Version: purgeVersion(e.Version)}
	}
	if _, err := n.store.ApplyBatch(tombs); err != nil {
		return fmt.Errorf("cluster: purge %d entries: %w", len(ents), err)
	}
	n.metrics.purged.Add(float64(len(ents)))
	return nil
}
