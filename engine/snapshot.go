package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// Snapshot layout (see doc.go).
var (
	bucketKeys = []byte("keys")
	bucketMeta = []byte("meta")
	metaSeq    = []byte("seq")
	metaKeys   = []byte("keys") // how many keys the index held: a sizing hint
	metaFormat = []byte("format")
)

const snapshotFormat = 1

// snapshotFillPercent: keys are written in sorted order, so pages that
// split can be left nearly full (bbolt's default of half full doubles the
// file after a first large snapshot).
const snapshotFillPercent = 0.9

// snapshotMapBytes is how much address space the writable snapshot handle
// maps from the start (more is mapped once the file outgrows it). bbolt
// maps the file anew each time it outgrows its map, and to do so copies
// every key and value the open transaction holds to the heap: a
// snapshot of a million fresh keys grew its map thirteen times and
// allocated 400 MB doing it. Address space only: what is resident is what
// the snapshot touches (and dropResident gives that back). On 32-bit
// machines the map grows as bbolt decides.
const snapshotMapBytes = 1 << 30 * int(^uint(0)>>63)

// openSnapshot opens (creating if needed) the bbolt file and its buckets.
func openSnapshot(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: snapshotMapBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("engine: open snapshot %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketKeys); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(metaFormat); {
		case v == nil:
			return meta.Put(metaFormat, []byte{snapshotFormat})
		case len(v) != 1 || v[0] != snapshotFormat:
			return fmt.Errorf("%w: snapshot format %x", ErrCorrupt, v)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("engine: snapshot %s: %w", path, err)
	}
	return db, nil
}

func writeSnapshotSeq(db *bolt.DB, seq uint64) error {
	err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSeq, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return fmt.Errorf("engine: write snapshot seq: %w", err)
	}
	return nil
}

// Snapshot writes what changed since the last snapshot now, then lets the
// log drop the segments it covers.
func (e *Engine) Snapshot() error {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if e.finished {
		return ErrClosed
	}
	return e.snapshotLocked()
}

// snapshotLocked runs one snapshot; e.snapMu is held. Writers wait only
// while the dirty lists are swapped.
func (e *Engine) snapshotLocked() error {
	start := time.Now()
	e.gate.Lock()
	lists := e.ix.swapDirty()
	seq := e.wal.LastSeq()
	e.walSince.Store(0)
	e.gate.Unlock()

	defer e.ix.snapMem.Store(0)
	keys := flatten(lists)
	if len(keys) == 0 && seq == e.snapSeq.Load() {
		return nil
	}
	e.metrics.running.Set(1)
	e.snapping.Store(true)
	err := e.writeSnapshot(keys, seq)
	e.snapping.Store(false)
	e.metrics.running.Set(0)
	if err != nil {
		e.ix.restoreDirty(keys)
		return err
	}
	e.snapSeq.Store(seq)
	took := time.Since(start)
	e.metrics.snapshot.Observe(took.Seconds())
	e.logger.Debug("engine: snapshot", "keys", len(keys), "seq", seq, "took", took)
	if err := e.wal.Release(seq); err != nil {
		return fmt.Errorf("engine: release log up to %d: %w", seq, err)
	}
	return nil
}

// snapshotTxNodes is the most pages one snapshot transaction may change,
// and snapshotTxNodes*4096 the most bytes of values it may write. bbolt
// keeps every page a transaction changes in memory (as a node, and as a
// page buffer at commit) until it commits, and the values it writes (in
// the arena): keys spread over the file change about a page (4 KiB) each,
// keys written in order many to a page, and one node grows with every key
// added to it until the commit splits it. A bound on the pages and on the
// bytes, not the keys, bounds that memory whatever the size of the file,
// the order of the keys and the size of the values. With a memory bound
// the transaction takes a small share of it, and never more than
// maxSnapshotTxNodes pages: at 1<<16 (256 MiB), a node without a bound held
// 120 MB of page buffers while it snapshotted a million fresh keys. Fewer
// pages per transaction cost more commits (two fsyncs each): a snapshot of
// 1.3 GB takes about 80 at the cap.
func snapshotTxNodes(maxMemory int64) int64 {
	if maxMemory == 0 {
		return maxSnapshotTxNodes
	}
	return min(max(maxMemory/64/4096, 256), maxSnapshotTxNodes)
}

const maxSnapshotTxNodes = 1 << 12

// writeSnapshot writes the current state of keys, in transactions of at
// most snapshotTxNodes changed pages, and seq with the last. Keys no
// longer in the index are deleted. A failed transaction gives back the
// disk space it took (giveBack); those committed before it stay, which is
// harmless: they hold states newer than the seq still in force, and
// replaying the log after that seq over them changes nothing (Apply
// decides by version).
func (e *Engine) writeSnapshot(keys []string, seq uint64) error {
	limit := snapshotTxNodes(e.cfg.MaxMemory)
	var a arena
	for {
		a.reset()
		n, err := e.writeSnapshotTx(keys, seq, limit, &a)
		dropResident(e.db) // the pages it read through the map
		if err != nil || n == len(keys) {
			return err
		}
		keys = keys[n:]
	}
}

// writeSnapshotTx writes the current state of keys in one transaction
// until it has changed limit pages or written limit*4096 bytes into a,
// and seq if it got to the end of keys. It returns how many keys it wrote.
func (e *Engine) writeSnapshotTx(keys []string, seq uint64, limit int64, a *arena) (int, error) {
	var (
		ents []Entry
		n    int
	)
	err := e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		b.FillPercent = snapshotFillPercent
		for n = 0; n < len(keys); n++ {
			if n > 0 && a.used >= limit*4096 {
				return nil // the rest go in the next transaction, seq with the last
			}
			if n > 0 && n%16 == 0 {
				if st := tx.Stats(); st.GetNodeCount() >= limit {
					return nil
				}
			}
			k := keys[n]
			var v []byte
			var ok bool
			v, ents, ok = e.ix.encodeItem(k, a, ents)
			kb := unsafe.Slice(unsafe.StringData(k), len(k)) // bbolt only reads keys
			var err error
			if ok {
				err = b.Put(kb, v)
			} else {
				err = b.Delete(kb)
			}
			if err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(metaKeys, binary.BigEndian.AppendUint64(nil, uint64(e.ix.items()))); err != nil {
			return err
		}
		return meta.Put(metaSeq, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		err = fmt.Errorf("engine: write snapshot (%d keys, seq %d): %w", len(keys), seq, err)
		err = errors.Join(err, e.giveBack())
		return 0, err
	}
	return n, nil
}

// giveBack truncates the snapshot file to the pages the committed state
// uses (its high-water mark; a failed fsync can leave a new meta page in
// force, so it is read, not remembered).
//
// A commit grows the file (ftruncate, which allocates nothing, and ahead
// of what it needs: to the size of the map while that is under bbolt's
// AllocSize, then 16 MiB past the need) and then writes its new pages past
// the old end. When a write fails (ENOSPC), bbolt rolls back, but the file
// keeps its size and the blocks of every page written: bbolt never shrinks
// a file. Each retried snapshot would then keep whatever space was freed
// meanwhile, and the log could never get a new segment, so the node would
// refuse writes until a restart. Truncating to the size before the failed
// transaction is not enough: its pages may lie in the tail an earlier
// commit grew the file by.
//
// Only snapshots write to e.db, one at a time under e.snapMu, so nothing
// else uses the pages past the committed end; bbolt's map may reach past
// the end of the file, but nothing reads there, and the next commit grows
// the file again before it writes.
func (e *Engine) giveBack() error {
	var need int64
	err := e.db.View(func(tx *bolt.Tx) error {
		need = tx.Size() // the high-water mark: pages [0, pgid) are in use
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: snapshot size after a failed write: %w", err)
	}
	path := e.db.Path()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("engine: give back snapshot space: %w", err)
	}
	err = shrink(f, need)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("engine: give back snapshot space of %s: %w", path, err)
	}
	return nil
}

// shrink truncates f to size if it is larger, and makes that durable.
func shrink(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() <= size {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// arena hands out byte slices that stay valid until it is reset, as bbolt
// wants for values until commit.
type arena struct {
	cur  []byte
	used int64 // bytes handed out since the last reset
}

// reset takes back every slice handed out: the last buffer is used again.
func (a *arena) reset() { a.cur, a.used = a.cur[:0], 0 }

func (a *arena) encode(ents []Entry) []byte {
	need := 16
	for i := range ents {
		need += 48 + len(ents[i].Value) + len(ents[i].ContentType)
	}
	if cap(a.cur)-len(a.cur) < need {
		a.cur = make([]byte, 0, max(need, 1<<20))
	}
	start := len(a.cur)
	a.cur = appendEntries(a.cur, ents, false)
	a.used += int64(len(a.cur) - start)
	return a.cur[start:len(a.cur):len(a.cur)]
}

// encodeItem encodes the slots of key, or reports false when the key is no
// longer in the index. It clears the item's dirty bit: a change from now on
// adds the key to the next snapshot's list (see dirtyKeys).
func (ix *index) encodeItem(key string, a *arena, ents []Entry) ([]byte, []Entry, bool) {
	h := hashKey(key)
	s := ix.shard(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := s.t.get(key, h)
	if it == nil {
		return nil, ents, false
	}
	if it.meta.Load()&metaDirty != 0 {
		it.meta.And(^uint32(metaDirty)) // atomic: readers set metaVisited under the read lock
	}
	ents = ix.slots(s, it, ents[:0])
	return a.encode(ents), ents, true
}

// swapDirty takes every shard's dirty list.
func (ix *index) swapDirty() []dirtyKeys {
	out := make([]dirtyKeys, Buckets)
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.Lock()
		out[i], s.dirty = s.dirty, dirtyKeys{}
		s.mu.Unlock()
		ix.snapMem.Add(out[i].mem) // still held, until the snapshot ends
		ix.dirtyMem.Add(-out[i].mem)
	}
	return out
}

// restoreDirty adds again the keys of a snapshot that failed, whatever
// their items' dirty bits say: the snapshot may have cleared some.
func (ix *index) restoreDirty(keys []string) {
	for _, k := range keys {
		h := hashKey(k)
		s := ix.shard(h)
		s.mu.Lock()
		if it := s.t.get(k, h); it != nil {
			it.meta.Or(metaDirty)
		}
		ix.addDirty(s, k)
		s.mu.Unlock()
	}
}

// flatten returns the keys of the dirty lists in order and without
// repeats. They alias the lists' buffers, which nothing adds to any more.
func flatten(lists []dirtyKeys) []string {
	var keys []string
	for i := range lists {
		keys = lists[i].appendKeys(keys)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// snapshotLoop snapshots every SnapshotInterval while there are changes,
// and early when the log since the last one passes SnapshotWALBytes.
func (e *Engine) snapshotLoop() {
	t := time.NewTicker(e.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			if e.ix.dirtyMem.Load() == 0 && e.wal.LastSeq() == e.snapSeq.Load() {
				continue
			}
		case <-e.snapKick:
		}
		if err := e.Snapshot(); err != nil {
			e.logger.Error("engine: snapshot failed", "err", err)
		}
	}
}
