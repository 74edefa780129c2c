package engine

import (
	"bytes"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// shard holds the keys of one anti-entropy bucket.
type shard struct {
	mu     sync.RWMutex
	t      table
	locals map[*item]*slot
	ctypes map[*item]string
	dirty  dirtyKeys     // keys changed since the last snapshot swap
	digest atomic.Uint64 // XOR of entryHash over the replicated slots; the XOR of its leaves
	evq    evictQueue    // values the policy may evict (SIEVE)
	stubs  stubQueue     // eviction stubs, oldest first
}

// index is the in-memory state: shards by bucket for point access and
// per-bucket work, leaf digests, an ordered tree for listing, a deadline
// heap for expiry. Lock order: shard.mu, then treeMu or deadlines.mu.
type index struct {
	shards [Buckets]shard
	// leaves[l] is the XOR of entryHash over the replicated slots of leaf l,
	// written under the lock of the leaf's shard (l % Buckets).
	leaves    [Leaves]atomic.Uint64
	maxVer    maxVersion // the largest version applied or loaded
	treeMu    sync.RWMutex
	tree      *ordered
	ct        *interner
	deadlines *deadlineHeap
	ttl       int64 // tombstone TTL in nanoseconds

	policy  Policy
	bounded bool // a memory budget is set: values are queued for eviction
	// loading: Open is loading the snapshot and the log. Evictions then
	// leave the keys clean: the snapshot keeps their values and the next
	// Open evicts them again by the same policy, rather than the dirty
	// lists growing with every key evicted while nothing is snapshotted.
	loading atomic.Bool

	keys, tombs, keyBytes, valBytes atomic.Int64
	expired                         atomic.Int64
	// mem is what the accounting charges for the items (see memory.go);
	// stubs and stubMem count eviction stubs; queued counts items in the
	// eviction queues; dirtyMem is what the dirty lists are charged
	// (dirtyCost of each key), snapMem what the list of the snapshot
	// being written is.
	mem, stubs, stubMem, queued, dirtyMem, snapMem atomic.Int64
	evicted, stubsDropped                          atomic.Int64
}

func newIndex(tombstoneTTL time.Duration, bounded bool, policy Policy) *index {
	ix := &index{
		tree:      newOrdered(),
		ct:        newInterner(),
		deadlines: newDeadlineHeap(),
		ttl:       int64(tombstoneTTL),
		policy:    policy,
		bounded:   bounded,
	}
	return ix
}

// used is what the accounting charges now: the items, the dirty lists and
// the keys of the snapshot being written. When snapshots fall behind the
// writes, the dirty lists grow and fewer items fit.
func (ix *index) used() int64 {
	return ix.mem.Load() + ix.dirtyMem.Load() + ix.snapMem.Load()
}

// items is how many keys the index holds.
func (ix *index) items() int64 { return ix.keys.Load() + ix.tombs.Load() }

// reserve sizes the shards' tables for n keys in all.
func (ix *index) reserve(n uint64) {
	if n > 1<<32 {
		return // not a plausible hint
	}
	mean := float64(n) / Buckets
	per := int(mean + 3*math.Sqrt(mean))
	for i := range ix.shards {
		ix.shards[i].t.reserve(per)
	}
}

func (ix *index) shard(h uint64) *shard { return &ix.shards[h%Buckets] }

// stat is what one item contributes to the counters.
type stat struct{ keys, tombs, stubs, kbytes, vbytes, mem int64 }

func (a *stat) add(b stat) {
	a.keys += b.keys
	a.tombs += b.tombs
	a.stubs += b.stubs
	a.kbytes += b.kbytes
	a.vbytes += b.vbytes
	a.mem += b.mem
}

// stat counts a key under tombs when its visible slot is a tombstone or an
// expiry marker, under stubs when it is an eviction stub, and charges what
// it takes in memory (see memory.go).
func (s *shard) stat(it *item) stat {
	f := it.flags()
	h := it.header()
	st := stat{kbytes: int64(h.klen), vbytes: int64(h.vlen)}
	st.mem = costItem + allocSize(h.size())
	if f&(itemDeleted|itemMarker) != 0 || h.exp != 0 {
		st.mem += costDeadline
	}
	if f&itemCtypeX != 0 {
		st.mem += costCtypeX + int64(len(s.ctypes[it]))
	}
	deleted := f&(itemDeleted|itemMarker) != 0
	stub := f&itemEvicted != 0
	if f&itemLocal != 0 {
		l := s.locals[it]
		st.vbytes += int64(len(l.value))
		st.mem += costLocal + costDeadline + allocSize(len(l.value))
		deleted, stub = l.deleted, false
	}
	switch {
	case deleted:
		st.tombs = 1
	case stub:
		st.stubs = 1
	default:
		st.keys = 1
	}
	return st
}

func (ix *index) account(before, after stat) {
	if d := after.keys - before.keys; d != 0 {
		ix.keys.Add(d)
	}
	if d := after.tombs - before.tombs; d != 0 {
		ix.tombs.Add(d)
	}
	if d := after.kbytes - before.kbytes; d != 0 {
		ix.keyBytes.Add(d)
	}
	if d := after.vbytes - before.vbytes; d != 0 {
		ix.valBytes.Add(d)
	}
	if d := after.stubs - before.stubs; d != 0 {
		ix.stubs.Add(d)
	}
	if d := after.stubs*after.mem - before.stubs*before.mem; d != 0 {
		ix.stubMem.Add(d)
	}
	if d := after.mem - before.mem; d != 0 {
		ix.mem.Add(d)
	}
}

// markDirty puts the key of it into the shard's dirty list unless its dirty bit
// says the key is there already (or in the snapshot being written, which
// has not yet read it). Called with s.mu held.
func (ix *index) markDirty(s *shard, it *item) {
	if it.meta.Load()&metaDirty != 0 {
		return
	}
	it.meta.Or(metaDirty)
	ix.addDirty(s, it.key())
}

// addDirty appends key to the shard's dirty list. Called with s.mu held.
func (ix *index) addDirty(s *shard, key string) {
	ix.dirtyMem.Add(s.dirty.add(key))
}

// wins reports whether e goes into the slot its Local flag names: it must be
// newer than that slot and, when Local, newer than the replicated slot too
// (an older local write would never be seen).
func (s *shard) wins(it *item, e *Entry) bool {
	if it == nil {
		return true
	}
	if e.Local {
		if it.flags()&itemRepl != 0 && e.Version.Compare(it.ver()) <= 0 {
			return false
		}
		if it.flags()&itemLocal != 0 && e.Version.Compare(s.locals[it].ver) <= 0 {
			return false
		}
		return true
	}
	return it.flags()&itemRepl == 0 || e.Version.Compare(it.ver()) > 0
}

// apply puts e into the index if it wins and reports whether it did. It
// marks the key dirty when dirty is set (everything but snapshot loading).
// Its version counts towards maxVer either way.
//
// An applied entry's Value is pointed at the store's own copy (see
// Engine.ApplyBatch).
func (ix *index) apply(e *Entry, now int64, dirty bool) bool {
	ix.maxVer.note(e.Version)
	h := hashKey(e.Key)
	s := ix.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.t.get(e.Key, h)
	if !s.wins(it, e) {
		return false
	}
	created := it == nil
	var before stat
	if created {
		it = &item{hidx: -1}
	} else {
		before = s.stat(it)
	}
	if e.Local {
		ix.setLocal(s, it, e)
		e.Value = s.locals[it].value
	} else {
		ix.setRepl(s, it, e, h, now)
		switch f := it.flags(); {
		case f&itemMarker != 0: // expired on arrival: its bytes are not kept
			e.Value = bytes.Clone(e.Value)
		case f&itemDeleted != 0:
			e.Value = nil
		default:
			e.Value = it.value()
		}
	}
	if created {
		s.t.put(it, h)
		ix.treeMu.Lock()
		ix.tree.insert(it)
		ix.treeMu.Unlock()
	}
	ix.account(before, s.stat(it))
	if dirty {
		ix.markDirty(s, it)
	}
	ix.enqueue(s, it)
	ix.reschedule(s, it, now, created)
	return true
}

func (ix *index) setRepl(s *shard, it *item, e *Entry, h uint64, now int64) {
	if it.flags()&itemRepl != 0 {
		ix.xorDigest(s, h, replHash(h, it))
	}
	ct, over := ix.fillRepl(it, e, now)
	ix.attachRepl(s, it, h, ct, over)
	if it.flags()&itemLocal != 0 && s.locals[it].ver.Compare(e.Version) <= 0 {
		delete(s.locals, it) // a newer cluster write wins over the local one
		it.setFlags(it.flags() &^ itemLocal)
	}
}

// fillRepl writes e into the item's replicated fields and touches no shard
// state. A value already past its expiry at now goes in as an expiry
// marker, without its bytes or content type. A content type the interner
// has no room for is returned instead.
func (ix *index) fillRepl(it *item, e *Entry, now int64) (ctype string, overflow bool) {
	const kinds = itemDeleted | itemMarker | itemEvicted
	switch {
	case e.Deleted:
		it.setRecord(e.Key, nil, e.Version, e.ExpiresAt)
		it.setFlags(it.flags()&^kinds | itemRepl | itemDeleted)
	case e.ExpiresAt != 0 && e.ExpiresAt <= now:
		it.setRecord(e.Key, nil, e.Version, e.ExpiresAt)
		it.setFlags(it.flags()&^kinds | itemRepl | itemMarker)
		it.setCtype(0)
		return "", false
	case e.Evicted: // a stub from the snapshot
		it.setRecord(e.Key, nil, e.Version, e.ExpiresAt)
		it.setFlags(it.flags()&^kinds | itemRepl | itemEvicted)
		it.setCtype(0)
		return "", false
	default:
		it.setRecord(e.Key, e.Value, e.Version, e.ExpiresAt)
		it.setFlags(it.flags()&^kinds | itemRepl)
	}
	if id, ok := ix.ct.id(e.ContentType); ok {
		it.setCtype(id)
		return "", false
	}
	return string([]byte(e.ContentType)), true
}

// attachRepl is the shard's part of a replicated write filled by fillRepl:
// the content type side map and the digest (whose old term the caller
// removed).
func (ix *index) attachRepl(s *shard, it *item, h uint64, ctype string, overflow bool) {
	switch {
	case overflow:
		if s.ctypes == nil {
			s.ctypes = make(map[*item]string)
		}
		s.ctypes[it] = ctype
		it.setFlags(it.flags() | itemCtypeX)
	case it.flags()&itemCtypeX != 0:
		delete(s.ctypes, it)
		it.setFlags(it.flags() &^ itemCtypeX)
	}
	ix.xorDigest(s, h, replHash(h, it))
}

func (ix *index) setLocal(s *shard, it *item, e *Entry) {
	if it.p.Load() == nil {
		it.setRecord(e.Key, nil, Version{}, 0)
	}
	if s.locals == nil {
		s.locals = make(map[*item]*slot)
	}
	s.locals[it] = ix.newLocal(e)
	it.setFlags(it.flags() | itemLocal)
}

func (ix *index) newLocal(e *Entry) *slot {
	l := &slot{ctype: ix.ct.canonical(e.ContentType), exp: e.ExpiresAt, ver: e.Version, deleted: e.Deleted}
	if !e.Deleted && len(e.Value) > 0 {
		l.value = append([]byte(nil), e.Value...)
	}
	return l
}

// replEntry is the item's replicated slot as an Entry (values alias).
func (ix *index) replEntry(s *shard, it *item) Entry {
	h := it.header()
	e := Entry{
		Key:       h.key(),
		Value:     h.value(),
		ExpiresAt: h.exp,
		Version:   h.ver,
		Deleted:   it.flags()&itemDeleted != 0,
		Evicted:   it.flags()&itemEvicted != 0,
	}
	if it.flags()&itemCtypeX != 0 {
		e.ContentType = s.ctypes[it]
	} else {
		e.ContentType = ix.ct.name(it.ctype())
	}
	return e
}

func localEntry(key string, l *slot) Entry {
	return Entry{Key: key, Value: l.value, ContentType: l.ctype, ExpiresAt: l.exp,
		Version: l.ver, Deleted: l.deleted, Local: true}
}

// slots returns the item's entries: the replicated one first, if any.
func (ix *index) slots(s *shard, it *item, dst []Entry) []Entry {
	if it.flags()&itemRepl != 0 {
		dst = append(dst, ix.replEntry(s, it))
	}
	if it.flags()&itemLocal != 0 {
		dst = append(dst, localEntry(it.key(), s.locals[it]))
	}
	return dst
}

// visible returns what a reader sees of it at now: the local slot unless it
// is an expired value (then the replicated one shows through), and neither
// tombstones nor expired values (expiry markers included: their ExpiresAt
// has passed).
func (ix *index) visible(s *shard, it *item, now int64) (Entry, bool) {
	if it.flags()&itemLocal != 0 {
		l := s.locals[it]
		if l.deleted {
			return Entry{}, false
		}
		if l.exp == 0 || l.exp > now {
			return localEntry(it.key(), l), true
		}
	}
	if it.flags()&(itemRepl|itemDeleted|itemEvicted) != itemRepl {
		return Entry{}, false
	}
	e := ix.replEntry(s, it)
	if e.ExpiresAt != 0 && e.ExpiresAt <= now {
		return Entry{}, false
	}
	return e, true
}

func (ix *index) get(key string, now int64) (Entry, bool) {
	h := hashKey(key)
	s := ix.shard(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := s.t.get(key, h)
	if it == nil {
		return Entry{}, false
	}
	e, ok := ix.visible(s, it, now)
	if ok && ix.bounded {
		it.touch()
	}
	e.Key = key
	return e, ok
}

// head is the newest version held for key in either slot.
func (ix *index) head(key string) (Version, bool) {
	h := hashKey(key)
	s := ix.shard(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := s.t.get(key, h)
	if it == nil {
		return Version{}, false
	}
	var v Version
	if it.flags()&itemRepl != 0 {
		v = it.ver()
	}
	if it.flags()&itemLocal != 0 {
		if l := s.locals[it]; l.ver.Compare(v) > 0 {
			v = l.ver
		}
	}
	return v, true
}

func (ix *index) stats() Stats {
	return Stats{
		Keys:         int(ix.keys.Load()),
		Tombstones:   int(ix.tombs.Load()),
		KeyBytes:     ix.keyBytes.Load(),
		ValueBytes:   ix.valBytes.Load(),
		Stubs:        int(ix.stubs.Load()),
		MemoryUsed:   ix.used(),
		Evictions:    ix.evicted.Load(),
		StubsDropped: ix.stubsDropped.Load(),
	}
}
