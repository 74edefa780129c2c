package engine

import (
	"sync"
	"time"
)

// deadlineHeap is an indexed min-heap of item deadlines (Unix nanoseconds).
// item.hidx is each item's position, so a deadline moves or leaves in
// O(log n). wake receives a token when the earliest deadline moves earlier.
type deadlineHeap struct {
	mu   sync.Mutex
	h    []heapEntry
	wake chan struct{}
}

type heapEntry struct {
	at int64
	it *item
}

func newDeadlineHeap() *deadlineHeap {
	return &deadlineHeap{wake: make(chan struct{}, 1)}
}

// set gives it the deadline at, or takes it out of the heap when at is 0.
func (d *deadlineHeap) set(it *item, at int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := int(it.hidx)
	switch {
	case at == 0 && i < 0:
		return
	case at == 0:
		d.removeAt(i)
		return
	case i < 0:
		i = len(d.h)
		d.h = append(d.h, heapEntry{at, it})
		it.hidx = int32(i)
	default:
		d.h[i].at = at
	}
	d.fix(i)
	if it.hidx == 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// popDue removes and returns up to max items whose deadline is at or
// before now.
func (d *deadlineHeap) popDue(now int64, max int, dst []*item) []*item {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(dst) < max && len(d.h) > 0 && d.h[0].at <= now {
		dst = append(dst, d.h[0].it)
		d.removeAt(0)
	}
	return dst
}

// next is the earliest deadline, 0 when there is none.
func (d *deadlineHeap) next() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.h) == 0 {
		return 0
	}
	return d.h[0].at
}

func (d *deadlineHeap) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.h)
}

func (d *deadlineHeap) removeAt(i int) {
	last := len(d.h) - 1
	d.h[i].it.hidx = -1
	if i != last {
		d.h[i] = d.h[last]
		d.h[i].it.hidx = int32(i)
	}
	d.h[last] = heapEntry{}
	d.h = d.h[:last]
	if i != last {
		d.fix(i)
	}
}

// fix restores heap order after the deadline at i changed.
func (d *deadlineHeap) fix(i int) {
	if !d.down(i) {
		d.up(i)
	}
}

func (d *deadlineHeap) swap(i, j int) {
	d.h[i], d.h[j] = d.h[j], d.h[i]
	d.h[i].it.hidx = int32(i)
	d.h[j].it.hidx = int32(j)
}

func (d *deadlineHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if d.h[p].at <= d.h[i].at {
			return
		}
		d.swap(i, p)
		i = p
	}
}

// down sinks the entry at i and reports whether it moved.
func (d *deadlineHeap) down(i int) bool {
	n, moved := len(d.h), false
	for {
		c := 2*i + 1
		if c >= n {
			return moved
		}
		if c+1 < n && d.h[c+1].at < d.h[c].at {
			c++
		}
		if d.h[i].at <= d.h[c].at {
			return moved
		}
		d.swap(i, c)
		i, moved = c, true
	}
}

// slotDeadlines are when the replicated and the local slot of it change
// next (0: never). A replicated value turns into an expiry marker at its
// ExpiresAt; the marker goes TombstoneTTL after that ExpiresAt, a tombstone
// TombstoneTTL after its version's wall time. A local value goes at its
// ExpiresAt; a local tombstone that hides a replicated entry is kept as
// long as that entry is there.
func (ix *index) slotDeadlines(s *shard, it *item) (repl, local int64) {
	if it.flags()&itemRepl != 0 {
		h := it.header()
		switch {
		case it.flags()&itemDeleted != 0:
			repl = h.ver.WallTime().UnixNano() + ix.ttl
		case it.flags()&itemMarker != 0:
			repl = h.exp + ix.ttl
		default:
			repl = h.exp
		}
	}
	if it.flags()&itemLocal != 0 {
		l := s.locals[it]
		switch {
		case !l.deleted:
			local = l.exp
		case it.flags()&itemRepl == 0:
			local = l.ver.WallTime().UnixNano() + ix.ttl
		}
	}
	return repl, local
}

func earliest(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// reschedule files it under its next deadline, or expires it now when that
// has passed. fresh says it was never in the heap (saves the heap lock for
// the common new key without expiry). Called with s.mu held.
func (ix *index) reschedule(s *shard, it *item, now int64, fresh bool) {
	at := earliest(ix.slotDeadlines(s, it))
	switch {
	case at != 0 && at <= now:
		ix.expire(s, it, now)
	case at != 0 || !fresh:
		ix.deadlines.set(it, at)
	}
}

// expire turns a due replicated value into an expiry marker, removes the
// other slots of it that are due at now, and the item itself when none is
// left. Called with s.mu held.
func (ix *index) expire(s *shard, it *item, now int64) {
	before := s.stat(it)
	changed := int64(0) // values expired and slots removed
	for {
		repl, local := ix.slotDeadlines(s, it)
		switch {
		case repl != 0 && repl <= now && it.flags()&(itemDeleted|itemMarker) == 0:
			ix.toMarker(s, it)
		case repl != 0 && repl <= now:
			ix.dropRepl(s, it)
		case local != 0 && local <= now:
			delete(s.locals, it)
			it.setFlags(it.flags() &^ itemLocal)
		default:
			if changed > 0 {
				ix.expired.Add(changed)
				ix.markDirty(s, it)
				ix.account(before, s.stat(it))
			}
			ix.deadlines.set(it, earliest(repl, local))
			return
		}
		changed++
		if it.flags()&(itemRepl|itemLocal) == 0 {
			ix.expired.Add(changed)
			ix.remove(s, it, before, true)
			return
		}
	}
}

// toMarker frees the value and content type of an expired replicated
// value and keeps its key, version and ExpiresAt as an expiry marker. The
// digest term does not change: it covers neither the value nor the content
// type.
func (ix *index) toMarker(s *shard, it *item) {
	if it.flags()&itemCtypeX != 0 {
		delete(s.ctypes, it)
		it.setFlags(it.flags() &^ itemCtypeX)
	}
	it.setCtype(0)
	if h := it.header(); h.vlen > 0 {
		it.setRecord(h.key(), nil, h.ver, h.exp)
	}
	it.setFlags(it.flags()&^itemEvicted | itemMarker)
}

// dropRepl empties the replicated slot, keeping the item for its local one.
func (ix *index) dropRepl(s *shard, it *item) {
	key := it.key()
	h := hashKey(key)
	ix.xorDigest(s, h, replHash(h, it))
	if it.flags()&itemCtypeX != 0 {
		delete(s.ctypes, it)
	}
	it.setFlags(it.flags() &^ (itemRepl | itemDeleted | itemMarker | itemEvicted | itemCtypeX))
	it.setCtype(0)
	if it.flags()&itemLocal != 0 {
		it.setRecord(key, nil, Version{}, 0) // free the value
	}
}

// remove takes an emptied item out of the index, marking its key dirty
// when dirty is set.
func (ix *index) remove(s *shard, it *item, before stat, dirty bool) {
	key := it.key()
	s.t.del(key, hashKey(key))
	ix.treeMu.Lock()
	ix.tree.delete(it)
	ix.treeMu.Unlock()
	ix.deadlines.set(it, 0)
	if dirty {
		ix.markDirty(s, it)
	}
	ix.account(before, stat{})
}

// expireDue handles one item the heap gave up as due.
func (ix *index) expireDue(it *item, now int64) {
	h := hashKey(it.key())
	s := ix.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.get(it.key(), h) != it {
		return // removed meanwhile
	}
	ix.reschedule(s, it, now, false)
}

// maxReaperSleep bounds the reaper's sleep so that a clock that is not the
// wall clock (Config.Now) is still followed.
const maxReaperSleep = time.Second

// reap runs until stop closes: it sleeps until the earliest deadline (or a
// wake-up because an earlier one arrived) and expires what is due. Its work
// is proportional to what expires.
func (ix *index) reap(now func() time.Time, stop <-chan struct{}) {
	timer := time.NewTimer(maxReaperSleep)
	defer timer.Stop()
	var due []*item
	for {
		t := now().UnixNano()
		due = ix.deadlines.popDue(t, 1024, due[:0])
		for _, it := range due {
			ix.expireDue(it, t)
		}
		clear(due)
		if len(due) == 1024 {
			continue
		}
		sleep := maxReaperSleep
		if next := ix.deadlines.next(); next != 0 && time.Duration(next-t) < sleep {
			sleep = time.Duration(next - t)
		}
		timer.Reset(sleep)
		select {
		case <-stop:
			return
		case <-ix.deadlines.wake:
		case <-timer.C:
		}
	}
}
