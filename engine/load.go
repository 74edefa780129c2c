package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// loadedKey is a key read from the snapshot, its item built but not yet
// in the index.
type loadedKey struct {
	it       *item
	h        uint64
	local    *slot
	ctype    string // replicated content type without an interned id
	overflow bool
	rewrite  bool // the value expired: the snapshot should hold the marker instead
}

// loadBatch is how many keys go from the reader to the indexer at a time.
const loadBatch = 1024

// loadSnapshotFile loads the snapshot at path, if there is one, through a
// read-only handle (which needs no freelist) mapped in one go: the load
// reads every page anyway.
func loadSnapshotFile(path string, ix *index, now int64, afterBatch func()) (seq uint64, n int, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second, MmapFlags: populateFlag})
	if err != nil {
		return 0, 0, fmt.Errorf("engine: open snapshot %s: %w", path, err)
	}
	seq, n, err = loadSnapshot(db, ix, now, afterBatch)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("engine: close snapshot %s: %w", path, cerr)
	}
	return seq, n, err
}

// loadSnapshot fills ix from db and returns the log sequence number the
// snapshot covers and how many entries it read. It runs as a pipeline: one
// goroutine reads, decodes and builds items (the allocations), the caller's
// goroutine puts them into the shards and the ordered index.
// afterBatch, if not nil, runs after each batch joined the index.
func loadSnapshot(db *bolt.DB, ix *index, now int64, afterBatch func()) (seq uint64, n int, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil // created but never written
		}
		if v := meta.Get(metaFormat); v != nil && (len(v) != 1 || v[0] != snapshotFormat) {
			return fmt.Errorf("%w: snapshot format %x", ErrCorrupt, v)
		}
		if v := meta.Get(metaSeq); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: snapshot seq %x", ErrCorrupt, v)
			}
			seq = binary.BigEndian.Uint64(v)
		}
		if v := meta.Get(metaKeys); len(v) == 8 {
			ix.reserve(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("engine: load snapshot: %w", err)
	}
	batches := make(chan []loadedKey, 4)
	var readErr error
	go func() {
		defer close(batches)
		readErr = db.View(func(tx *bolt.Tx) error {
			var err error
			n, err = readKeys(tx, ix, now, batches)
			return err
		})
	}()
	for b := range batches {
		ix.attachBatch(b, now)
		if afterBatch != nil {
			afterBatch()
		}
	}
	if readErr != nil {
		return 0, 0, fmt.Errorf("engine: load snapshot: %w", readErr)
	}
	return seq, n, nil
}

// readKeys decodes every key of the snapshot into items, sent in batches.
func readKeys(tx *bolt.Tx, ix *index, now int64, out chan<- []loadedKey) (int, error) {
	var (
		ents  []Entry
		err   error
		n     int
		batch = make([]loadedKey, 0, loadBatch)
	)
	b := tx.Bucket(bucketKeys)
	if b == nil {
		return 0, nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if ents, err = decodeEntries(v, ents); err != nil {
			return n, fmt.Errorf("snapshot key %q: %w", k, err)
		}
		if len(k) == 0 || !validSlots(ents) {
			return n, fmt.Errorf("%w: snapshot key %q holds %d slots", ErrCorrupt, k, len(ents))
		}
		for i := range ents {
			ents[i].Key = unsafeString(k) // prepare copies what it keeps
		}
		batch = append(batch, ix.prepare(ents, now))
		n += len(ents)
		if len(batch) == loadBatch {
			out <- batch
			batch = make([]loadedKey, 0, loadBatch)
		}
	}
	if len(batch) > 0 {
		out <- batch
	}
	return n, nil
}

// validSlots: a replicated slot, a local one, or both with the local one
// newer.
func validSlots(ents []Entry) bool {
	switch len(ents) {
	case 1:
		return true
	case 2:
		return !ents[0].Local && ents[1].Local && ents[1].Version.Compare(ents[0].Version) > 0
	}
	return false
}

// prepare builds the item of a snapshot key without touching shard state.
// A replicated value already past its expiry becomes an expiry marker
// without its bytes.
func (ix *index) prepare(ents []Entry, now int64) loadedKey {
	key := ents[0].Key
	lk := loadedKey{it: &item{hidx: -1}, h: hashKey(key)}
	for i := range ents {
		e := &ents[i]
		ix.maxVer.note(e.Version)
		if e.Local {
			lk.local = ix.newLocal(e)
			continue
		}
		lk.ctype, lk.overflow = ix.fillRepl(lk.it, e, now)
		lk.rewrite = lk.it.flags()&itemMarker != 0 && (len(e.Value) > 0 || e.ContentType != "")
	}
	if lk.it.p.Load() == nil {
		lk.it.setRecord(key, nil, Version{}, 0)
	}
	return lk
}

// attachBatch puts prepared keys into an index that holds none of them
// yet: the ordered index takes the whole batch under one lock (a
// snapshot's keys come in order, which fills its leaves), then each key
// joins its shard. Slots already due go at once (after the ordered insert,
// which their removal undoes), marking the key dirty so that the next
// snapshot drops it; so does a value that became an expiry marker, so that
// the next snapshot holds the marker without the value's bytes.
func (ix *index) attachBatch(b []loadedKey, now int64) {
	ix.treeMu.Lock()
	for i := range b {
		ix.tree.insert(b[i].it)
	}
	ix.treeMu.Unlock()
	var added stat
	for i := range b {
		added.add(ix.attach(&b[i], now))
	}
	ix.account(stat{}, added)
}

// attach puts one prepared key into its shard and returns what it adds to
// the counters, before any expiry (which accounts for itself).
func (ix *index) attach(lk *loadedKey, now int64) stat {
	it := lk.it
	s := ix.shard(lk.h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if it.flags()&itemRepl != 0 {
		ix.attachRepl(s, it, lk.h, lk.ctype, lk.overflow)
	}
	if lk.local != nil {
		if s.locals == nil {
			s.locals = make(map[*item]*slot)
		}
		s.locals[it] = lk.local
		it.setFlags(it.flags() | itemLocal)
	}
	s.t.put(it, lk.h)
	ix.attachQueues(s, it)
	if lk.rewrite {
		ix.markDirty(s, it)
	}
	st := s.stat(it)
	ix.reschedule(s, it, now, true)
	return st
}
