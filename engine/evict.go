package engine

import (
	"sync"
)

// evictQueue is one shard's SIEVE queue (Zhang et al., NSDI '24) of the
// values the policy may evict, oldest first. A read sets the item's
// visited bit; the hand walks from the oldest towards the newest, clears
// the visited bits it passes and evicts the first item without one, then
// rests there until the next eviction; at the newest it starts again from
// the oldest. New items join at the newest end, behind the hand. Items
// that stopped being evictable (overwritten by a tombstone, expired,
// removed) stay until the hand or a compaction reaches them. Guarded by
// the shard's mutex.
type evictQueue struct {
	q     []*item // oldest first; nil is a hole left by an item taken out
	hand  int
	holes int
}

// compact drops the holes once they are half the queue, keeping the
// hand on the same item.
func (q *evictQueue) compact() {
	if q.holes < 32 || q.holes <= len(q.q)/2 {
		return
	}
	n, hand := 0, -1
	for i, it := range q.q {
		if i == q.hand {
			hand = n
		}
		if it != nil {
			q.q[n] = it
			n++
		}
	}
	if hand < 0 {
		hand = n
	}
	clear(q.q[n:])
	if cap(q.q) > 2*n+64 {
		q.q = append([]*item(nil), q.q[:n]...)
	} else {
		q.q = q.q[:n]
	}
	q.hand, q.holes = hand, 0
}

// take leaves a hole where it was.
func (q *evictQueue) take(i int) {
	it := q.q[i]
	q.q[i] = nil
	q.holes++
	it.setFlags(it.flags() &^ itemQueued)
}

// stubQueue is one shard's eviction stubs, oldest first, so that the
// oldest are dropped first under pressure. An item that stopped being a
// stub stays until it reaches the front. Guarded by the shard's mutex.
type stubQueue struct {
	q    []*item
	head int
}

func (q *stubQueue) push(it *item) {
	q.q = append(q.q, it)
	it.setFlags(it.flags() | itemStubbed)
}

// pop returns the oldest item that is still a stub, or nil.
func (q *stubQueue) pop() *item {
	for q.head < len(q.q) {
		it := q.q[q.head]
		q.q[q.head] = nil
		q.head++
		it.setFlags(it.flags() &^ itemStubbed)
		if it.flags()&itemEvicted != 0 {
			q.shrink()
			return it
		}
	}
	q.shrink()
	return nil
}

func (q *stubQueue) shrink() {
	switch {
	case q.head == len(q.q):
		q.q, q.head = q.q[:0], 0
	case q.head >= 64 && q.head > len(q.q)/2:
		q.q = append([]*item(nil), q.q[q.head:]...)
		q.head = 0
	}
}

// evictable reports whether the policy may evict it: a replicated value
// (not a tombstone, an expiry marker or a stub) without a node-local slot,
// with an expiry under the volatile policies. Tombstones and markers hold
// no value and are never evicted before their collection time.
func (ix *index) evictable(it *item) bool {
	if it.flags()&(itemRepl|itemDeleted|itemMarker|itemEvicted|itemLocal) != itemRepl {
		return false
	}
	return (ix.policy != EvictVolatile && ix.policy != EvictVolatileTTL) || it.exp() != 0
}

// enqueue puts it at the newest end of its shard's queue if the policy
// may evict it and it is not queued yet. Called with s.mu held.
func (ix *index) enqueue(s *shard, it *item) {
	if !ix.bounded || (ix.policy != EvictAllKeys && ix.policy != EvictVolatile) {
		return
	}
	if it.flags()&itemQueued != 0 || !ix.evictable(it) {
		return
	}
	s.evq.q = append(s.evq.q, it)
	it.setFlags(it.flags() | itemQueued)
	ix.queued.Add(1)
}

// sieve takes the shard's next victim out of its queue, or returns nil
// when the queue holds none. Called with s.mu held.
func (ix *index) sieve(s *shard) *item {
	q := &s.evq
	q.compact()
	for steps := 2*len(q.q) + 1; steps > 0 && len(q.q) > 0; steps-- {
		if q.hand >= len(q.q) {
			q.hand = 0
		}
		i := q.hand
		q.hand++
		it := q.q[i]
		switch {
		case it == nil:
		case !ix.evictable(it):
			q.take(i)
			ix.queued.Add(-1)
		case it.meta.Load()&metaVisited != 0:
			it.meta.And(^uint32(metaVisited))
		default:
			q.take(i)
			ix.queued.Add(-1)
			return it
		}
	}
	return nil
}

// toStub evicts the value of it and keeps the key, version and expiry as
// an eviction stub. The digest term does not change: it covers neither
// the value nor the content type, so the hash tree still matches peers
// that hold the value. Called with s.mu held.
func (ix *index) toStub(s *shard, it *item) {
	before := s.stat(it)
	if it.flags()&itemCtypeX != 0 {
		delete(s.ctypes, it)
		it.setFlags(it.flags() &^ itemCtypeX)
	}
	it.setCtype(0)
	h := it.header()
	it.setRecord(h.key(), nil, h.ver, h.exp)
	it.setFlags(it.flags() | itemEvicted)
	if it.flags()&itemStubbed == 0 {
		s.stubs.push(it)
	}
	ix.account(before, s.stat(it))
	if !ix.loading.Load() {
		ix.markDirty(s, it)
	}
	ix.evicted.Add(1)
}

// dropStub drops a stub under pressure: the key leaves the index (or
// keeps only its node-local slot) and its digest term goes with it.
// Called with s.mu held.
func (ix *index) dropStub(s *shard, it *item, now int64) {
	before := s.stat(it)
	ix.dropRepl(s, it)
	ix.stubsDropped.Add(1)
	if it.flags()&itemLocal == 0 {
		ix.remove(s, it, before, !ix.loading.Load())
		return
	}
	ix.account(before, s.stat(it))
	if !ix.loading.Load() {
		ix.markDirty(s, it)
	}
	ix.reschedule(s, it, now, false)
}

// evictAt replays a logged eviction (it marks the key dirty whatever
// loading says, as replay does for every record): the value of e.Key at e.Version
// becomes a stub, unless the index holds another version (a newer write
// won meanwhile) or no value.
func (ix *index) evictAt(e *Entry) {
	h := hashKey(e.Key)
	s := ix.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.t.get(e.Key, h)
	if it == nil || it.flags()&(itemRepl|itemDeleted|itemMarker|itemEvicted) != itemRepl || it.ver() != e.Version {
		return
	}
	ix.toStub(s, it)
	ix.markDirty(s, it)
}

// attachQueues puts a key loaded from the snapshot into the queues.
// Called with s.mu held.
func (ix *index) attachQueues(s *shard, it *item) {
	if it.flags()&itemEvicted != 0 {
		s.stubs.push(it)
		return
	}
	ix.enqueue(s, it)
}

// evictor chooses what to evict when the index would pass its budget, and
// logs the evictions so that they hold across a restart.
type evictor struct {
	mu         sync.Mutex // one eviction at a time; guards the cursors
	cursor     int        // the next shard SIEVE evicts from
	stubCursor int        // the next shard a stub is dropped from
	cands      []*item    // volatile-ttl candidates

	logMu   sync.Mutex
	pending []Entry // evictions not logged yet
	kick    chan struct{}
}

// maxEvictRecord is the most evictions one log record carries.
const maxEvictRecord = 4096

// makeRoom evicts until the index's accounted memory plus need fits the
// budget, and reports whether it does.
func (e *Engine) makeRoom(need int64) bool {
	if e.budget == 0 || e.ix.used()+need <= e.budget {
		return true
	}
	e.ev.mu.Lock()
	defer e.ev.mu.Unlock()
	now := e.now()
	for e.ix.used()+need > e.budget {
		if !e.evictOne(now) {
			return false
		}
	}
	return true
}

// evictOne evicts what the policy says, or drops a stub: the oldest first
// once stubs take more than their share of the budget, or when the policy
// finds no value. It reports false when there was nothing to take.
// Called with e.ev.mu held.
func (e *Engine) evictOne(now int64) bool {
	ix := e.ix
	if ix.stubMem.Load() > e.budget/stubShareDen && e.dropOldestStub(now) {
		return true
	}
	switch ix.policy {
	case EvictAllKeys, EvictVolatile:
		if ix.queued.Load() > 0 && e.evictSieve() {
			return true
		}
	case EvictVolatileTTL:
		if e.evictSoonest(now) {
			return true
		}
	}
	return e.dropOldestStub(now)
}

// evictSieve evicts the next SIEVE victim of the next shard that has one,
// taking the shards in turn so that they shrink alike.
func (e *Engine) evictSieve() bool {
	for range Buckets {
		s := &e.ix.shards[e.ev.cursor]
		e.ev.cursor = (e.ev.cursor + 1) % Buckets
		s.mu.Lock()
		it := e.ix.sieve(s)
		if it != nil {
			e.ix.toStub(s, it)
			e.noteEviction(it)
		}
		s.mu.Unlock()
		if it != nil {
			return true
		}
	}
	return false
}

// evictSoonest evicts the values whose expiry comes first (volatile-ttl),
// found in the deadline heap; when the earliest deadlines are all stubs,
// it drops those instead, since they expire first anyway.
func (e *Engine) evictSoonest(now int64) bool {
	ix := e.ix
	cands, stubs := ix.deadlines.soonest(evictBatch, e.ev.cands[:0])
	e.ev.cands = cands
	done := false
	for _, it := range cands {
		h := hashKey(it.key())
		s := ix.shard(h)
		s.mu.Lock()
		if s.t.get(it.key(), h) == it {
			switch {
			case !stubs && ix.evictable(it):
				ix.toStub(s, it)
				e.noteEviction(it)
				done = true
			case stubs && it.flags()&itemEvicted != 0:
				ix.dropStub(s, it, now)
				done = true
			}
		}
		s.mu.Unlock()
	}
	clear(cands)
	return done
}

// evictBatch is how many values volatile-ttl evicts per look at the heap.
const evictBatch = 8

// dropOldestStub drops the oldest stub of the next shard that has one.
func (e *Engine) dropOldestStub(now int64) bool {
	if e.ix.stubs.Load() == 0 {
		return false
	}
	for range Buckets {
		s := &e.ix.shards[e.ev.stubCursor]
		e.ev.stubCursor = (e.ev.stubCursor + 1) % Buckets
		s.mu.Lock()
		it := s.stubs.pop()
		if it != nil {
			e.ix.dropStub(s, it, now)
		}
		s.mu.Unlock()
		if it != nil {
			return true
		}
	}
	return false
}

// noteEviction queues the eviction of it (now a stub) for the log.
// Called with its shard's lock held.
func (e *Engine) noteEviction(it *item) {
	if !e.logEvictions.Load() {
		return // recovering: the next snapshot holds the stubs
	}
	e.ev.logMu.Lock()
	e.ev.pending = append(e.ev.pending, Entry{Key: it.key(), Version: it.ver(), Evicted: true})
	n := len(e.ev.pending)
	e.ev.logMu.Unlock()
	if n == 1 || n >= maxEvictRecord {
		select {
		case e.ev.kick <- struct{}{}:
		default:
		}
	}
}

// evictLogLoop appends the evictions to the log, many to a record, beside
// the writes (it never holds a writer up). A crash before a record is
// written loses nothing but the eviction: the key comes back at restart,
// and is evicted again if it does not fit.
func (e *Engine) evictLogLoop() {
	for {
		select {
		case <-e.stop:
			return
		case <-e.ev.kick:
		}
		for e.logPending() {
		}
	}
}

// logPending logs up to maxEvictRecord pending evictions and reports
// whether more are waiting.
func (e *Engine) logPending() bool {
	e.ev.logMu.Lock()
	ents := e.ev.pending
	if len(ents) > maxEvictRecord {
		e.ev.pending = append([]Entry(nil), ents[maxEvictRecord:]...)
		ents = ents[:maxEvictRecord]
	} else {
		e.ev.pending = nil
	}
	more := len(e.ev.pending) > 0
	e.ev.logMu.Unlock()
	if len(ents) == 0 {
		return false
	}
	buf := appendEntries(nil, ents, true)
	e.gate.RLock()
	defer e.gate.RUnlock()
	if e.closed {
		return false // the last snapshot holds the stubs
	}
	if _, err := e.wal.Append(buf); err != nil {
		e.logger.Warn("engine: log evictions", "evictions", len(ents), "err", err)
		return more
	}
	e.walSince.Add(int64(len(buf)))
	return more
}

// soonest returns up to max items with the earliest deadlines that are
// values (by their flags, read without their shard's lock: the caller
// checks again), walking the heap best-first; when it finds none among
// the first entries but stubs, it returns those and stubs is true.
func (d *deadlineHeap) soonest(max int, dst []*item) (out []*item, stubs bool) {
	const maxVisits = 512
	d.mu.Lock()
	defer d.mu.Unlock()
	var stubList []*item
	front := frontier{h: d.h}
	if len(d.h) > 0 {
		front.push(0)
	}
	for visits := 0; len(front.idx) > 0 && visits < maxVisits && len(dst) < max; visits++ {
		i := front.pop()
		it := d.h[i].it
		switch f := it.flags(); {
		case f&(itemRepl|itemDeleted|itemMarker|itemEvicted|itemLocal) == itemRepl:
			dst = append(dst, it)
		case f&(itemRepl|itemEvicted) == itemRepl|itemEvicted && len(stubList) < max:
			stubList = append(stubList, it)
		}
		if c := 2*i + 1; c < len(d.h) {
			front.push(c)
		}
		if c := 2*i + 2; c < len(d.h) {
			front.push(c)
		}
	}
	if len(dst) == 0 && len(stubList) > 0 {
		return append(dst, stubList...), true
	}
	return dst, false
}

// frontier is a min-heap of positions in a deadline heap, by deadline:
// the best-first walk of soonest.
type frontier struct {
	h   []heapEntry
	idx []int
}

func (f *frontier) less(a, b int) bool { return f.h[f.idx[a]].at < f.h[f.idx[b]].at }

func (f *frontier) push(i int) {
	f.idx = append(f.idx, i)
	for c := len(f.idx) - 1; c > 0; {
		p := (c - 1) / 2
		if !f.less(c, p) {
			break
		}
		f.idx[c], f.idx[p] = f.idx[p], f.idx[c]
		c = p
	}
}

func (f *frontier) pop() int {
	top := f.idx[0]
	last := len(f.idx) - 1
	f.idx[0] = f.idx[last]
	f.idx = f.idx[:last]
	for p := 0; ; {
		c := 2*p + 1
		if c >= len(f.idx) {
			break
		}
		if c+1 < len(f.idx) && f.less(c+1, c) {
			c++
		}
		if !f.less(c, p) {
			break
		}
		f.idx[c], f.idx[p] = f.idx[p], f.idx[c]
		p = c
	}
	return top
}
