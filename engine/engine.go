package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/disperse/disperse/wal"
	bolt "go.etcd.io/bbolt"
)

// Errors returned by the engine. Log failures come through wrapped, so
// errors.Is(err, wal.ErrDiskFull) and errors.Is(err, wal.ErrIO) hold.
var (
	// ErrLocked: another process (or another Engine) holds the data directory.
	ErrLocked = errors.New("engine: data directory is locked by another process")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine: closed")
	// ErrBadEntry: an entry the engine cannot hold (an empty key).
	ErrBadEntry = errors.New("engine: bad entry")
	// ErrCorrupt: encoded entries (a log record, a snapshot value, a peer's
	// batch) do not decode. The wrapping error says where.
	ErrCorrupt = errors.New("engine: corrupt encoding")
	// ErrMemoryFull: a write of a value would take the index past its
	// memory budget (Config.MaxMemory) and the eviction policy found
	// nothing to evict (always so under EvictNone). Nothing was applied;
	// reads and deletes keep working.
	ErrMemoryFull = errors.New("engine: memory full")
)

// Buckets is the number of key-hash buckets anti-entropy compares
// (BucketOf).
const Buckets = 1024

// Leaves is the number of key-hash leaves of the anti-entropy hash tree
// (LeafOf): each bucket splits into Leaves/Buckets leaves.
const Leaves = 65536

// Engine is the in-memory index of one node with its log and snapshot.
// It is safe for concurrent use.
type Engine struct {
	cfg     Config
	logger  *slog.Logger
	ix      *index
	wal     *wal.Log
	db      *bolt.DB
	lock    *os.File
	metrics *metrics

	// gate orders writes against snapshots: Apply holds it shared from the
	// log append to the index update; a snapshot holds it exclusively only
	// to swap the dirty lists and read the log's last sequence number.
	gate   sync.RWMutex
	closed bool // guarded by gate

	snapMu   sync.Mutex // one snapshot at a time
	finished bool       // the last snapshot was written; guarded by snapMu
	snapSeq  atomic.Uint64
	snapping atomic.Bool  // a snapshot is being written
	walSince atomic.Int64 // log bytes appended since the last snapshot swap
	snapKick chan struct{}

	stop      chan struct{}
	loops     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	rec       RecoveryInfo
	bufs      sync.Pool

	budget       int64 // the index's memory budget; 0: none
	ev           evictor
	logEvictions atomic.Bool // evictions go to the log (not while recovering)
	hits, misses atomic.Int64
}

// Open locks cfg.Dir, loads the snapshot, replays the log after it and
// starts the expiry and snapshot loops. It returns only once the index is
// complete.
func Open(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	start := time.Now()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		logger:   cfg.Logger,
		ix:       newIndex(cfg.TombstoneTTL, cfg.MaxMemory > 0, cfg.Eviction),
		lock:     lock,
		metrics:  newMetrics(),
		snapKick: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		budget:   budgetOf(cfg.MaxMemory),
	}
	e.ev.kick = make(chan struct{}, 1)
	if cfg.SetMemoryLimit && cfg.MaxMemory > 0 {
		debug.SetMemoryLimit(cfg.MaxMemory)
	}
	e.ix.loading.Store(true)
	err = e.recover()
	e.ix.loading.Store(false)
	if err != nil {
		e.closeFiles()
		return nil, err
	}
	if err := e.metrics.register(cfg.Registerer, e); err != nil {
		e.closeFiles()
		return nil, err
	}
	e.rec.Took = time.Since(start)
	e.logger.Debug("engine: recovered",
		"dir", cfg.Dir, "entries", e.ix.keys.Load()+e.ix.tombs.Load(),
		"snapshot_entries", e.rec.SnapshotEntries, "expired_skipped", e.rec.ExpiredSkipped,
		"log_records", e.rec.LogRecords, "torn_bytes", e.rec.Log.TornBytes,
		"took", e.rec.Took)
	e.logEvictions.Store(true)
	e.loops.Add(3)
	go func() { defer e.loops.Done(); e.ix.reap(cfg.Now, e.stop) }()
	go func() { defer e.loops.Done(); e.snapshotLoop() }()
	go func() { defer e.loops.Done(); e.evictLogLoop() }()
	return e, nil
}

// recover opens the snapshot and the log and fills the index from them.
func (e *Engine) recover() error {
	restore := raiseGCPercent()
	defer func() { restore(e.ix.used() >= trimIndexAbove) }()
	path := filepath.Join(e.cfg.Dir, "snapshot.db")
	now := e.now()
	// A bound smaller than what was saved evicts while loading, by the
	// same policy, so that memory never passes it.
	room := func() { e.makeRoom(0) }
	seq, n, err := loadSnapshotFile(path, e.ix, now, room)
	if err != nil {
		return err
	}
	e.rec.SnapshotEntries = n
	e.snapSeq.Store(seq)
	// Opening bbolt for writing walks every page to rebuild its freelist
	// (NoFreelistSync); that runs beside the log replay.
	type opened struct {
		db  *bolt.DB
		err error
	}
	dbc := make(chan opened, 1)
	go func() {
		db, err := openSnapshot(path)
		dbc <- opened{db, err}
	}()
	err = e.openLog(seq, now)
	o := <-dbc
	e.db = o.db
	if err := errors.Join(err, o.err); err != nil {
		return err
	}
	e.makeRoom(0)
	dropResident(e.db) // opening walked every page; none is needed now
	if last := e.wal.LastSeq(); last < seq {
		// The log lost records the snapshot covers (it was removed or
		// replaced). Re-anchor the snapshot on the log as it is, or new
		// records would be numbered at or below seq and skipped at replay.
		e.logger.Warn("engine: log is behind the snapshot", "log_seq", last, "snapshot_seq", seq)
		if err := writeSnapshotSeq(e.db, last); err != nil {
			return err
		}
		e.snapSeq.Store(last)
	}
	return nil
}

// openLog opens the log and replays it after seq.
func (e *Engine) openLog(seq uint64, now int64) error {
	var err error
	e.wal, err = wal.Open(filepath.Join(e.cfg.Dir, "wal"), &wal.Options{
		Sync:         e.cfg.Sync,
		SegmentBytes: e.cfg.SegmentBytes,
		FS:           e.cfg.FS,
		Logger:       e.logger,
		ObserveSync:  func(d time.Duration) { e.metrics.fsync.Observe(d.Seconds()) },
	})
	if err != nil {
		return fmt.Errorf("engine: open log: %w", err)
	}
	e.rec.Log = e.wal.Recovery()
	if err := e.replay(seq, now); err != nil {
		return err
	}
	e.rec.ExpiredSkipped = int(e.ix.expired.Load())
	return nil
}

// replay applies the log records after seq.
func (e *Engine) replay(after uint64, now int64) error {
	var ents []Entry
	err := e.wal.Replay(after, func(seq uint64, payload []byte) error {
		var err error
		if ents, err = decodeEntries(payload, ents); err != nil {
			return fmt.Errorf("engine: log record %d: %w", seq, err)
		}
		for i := range ents {
			if ents[i].Evicted {
				e.ix.evictAt(&ents[i])
			} else {
				e.ix.apply(&ents[i], now, true)
			}
		}
		if e.rec.LogRecords++; e.rec.LogRecords%loadBatch == 0 {
			e.makeRoom(0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: replay: %w", err)
	}
	return nil
}

func (e *Engine) now() int64 { return e.cfg.Now().UnixNano() }

// Apply makes ent durable in the log and then puts it in the index. It
// reports whether ent was stored: true when it is newer than what the slot
// its Local flag names held (and, for a Local entry, newer than the
// replicated entry as well); the visible entry may then still be the
// node-local one. False means ent was the same as or older than what is held
// and nothing changed. On a log error nothing changes in memory.
func (e *Engine) Apply(ent Entry) (bool, error) {
	n, err := e.ApplyBatch([]Entry{ent})
	return n == 1, err
}

// ApplyBatch is Apply for many entries in one log record. It returns how
// many were stored. Entries with Evicted set are ignored (never stored).
//
// The engine keeps copies, never the caller's bytes, and on return the
// Value of every entry it stored is its own copy (immutable, shared with
// readers): a caller may reuse the buffers it passed once ApplyBatch
// returns, and what it keeps or sends on from ents is the stored bytes.
func (e *Engine) ApplyBatch(ents []Entry) (int, error) {
	var need int64 // what the values of ents may add
	deletes, stubs := false, 0
	for i := range ents {
		switch {
		case ents[i].Key == "":
			return 0, fmt.Errorf("%w: empty key", ErrBadEntry)
		case ents[i].Evicted:
			stubs++
		case ents[i].Deleted:
			deletes = true
		default:
			need += entryCost(&ents[i])
		}
	}
	if stubs > 0 {
		all := ents
		ents = withoutStubs(ents, stubs)
		defer func() { // the stored values back into the caller's entries
			j := 0
			for i := range all {
				if !all[i].Evicted {
					all[i].Value = ents[j].Value
					j++
				}
			}
		}()
	}
	if len(ents) == 0 {
		return 0, nil
	}
	if e.budget > 0 {
		switch {
		case need > 0 && !e.makeRoom(need):
			return 0, ErrMemoryFull
		case need == 0 && deletes:
			e.makeRoom(int64(len(ents)) * (costItem + costDeadline)) // deletes always go in
		}
	}
	bp := e.buffer()
	defer e.bufs.Put(bp)
	*bp = appendEntries((*bp)[:0], ents, true)
	e.gate.RLock()
	defer e.gate.RUnlock()
	if e.closed {
		return 0, ErrClosed
	}
	if _, err := e.wal.Append(*bp); err != nil {
		return 0, fmt.Errorf("engine: log %d entries: %w", len(ents), err)
	}
	now, won := e.now(), 0
	for i := range ents {
		if e.ix.apply(&ents[i], now, true) {
			won++
		}
	}
	if e.walSince.Add(int64(len(*bp))) >= e.cfg.SnapshotWALBytes ||
		(e.budget > 0 && e.ix.dirtyMem.Load() > e.cfg.MaxMemory/snapshotShare) {
		select {
		case e.snapKick <- struct{}{}:
		default:
		}
	}
	return won, nil
}

// withoutStubs returns ents without its n eviction stubs, in a new slice:
// a stub is not data (it says a node evicted the value), so Apply ignores
// it rather than fail the entries sent with it.
func withoutStubs(ents []Entry, n int) []Entry {
	out := make([]Entry, 0, len(ents)-n)
	for i := range ents {
		if !ents[i].Evicted {
			out = append(out, ents[i])
		}
	}
	return out
}

func (e *Engine) buffer() *[]byte {
	if bp, ok := e.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 512)
	return &b
}

// Get returns the visible entry of key: not a tombstone, not expired. A
// node-local entry hides the replicated one until it expires. Value aliases
// the engine's memory and must not be modified.
func (e *Engine) Get(key string) (Entry, bool) {
	ent, ok := e.ix.get(key, e.now())
	if ok {
		e.hits.Add(1)
	} else {
		e.misses.Add(1)
	}
	return ent, ok
}

// Work reports a count that moves with every read and every logged write
// (local or from a peer), and whether a snapshot is being written: while
// one is and the count stands still, what the node allocates is mostly
// the snapshot's (memtrim.Trimmer.Work).
func (e *Engine) Work() (served uint64, snapshotting bool) {
	return uint64(e.hits.Load()) + uint64(e.misses.Load()) + e.wal.LastSeq(), e.snapping.Load()
}

// List returns up to limit visible keys that start with prefix and sort
// after after, in byte order, and the key to continue after ("" when done).
// Keys that begin with byte 0x00 are internal and listed only when prefix
// begins with 0x00 too.
func (e *Engine) List(prefix, after string, limit int) (keys []string, next string) {
	return e.ix.list(prefix, after, limit, e.now())
}

// Head returns the newest version the engine holds for key in either slot,
// tombstones and expiry markers included, and false when it holds nothing
// for key. A write newer than it wins (Apply).
func (e *Engine) Head(key string) (Version, bool) {
	return e.ix.head(key)
}

// MaxVersion returns the largest version the engine has applied or loaded:
// from the snapshot and the log at Open and from every Apply since, stored
// or not, including entries collected since. It never goes down; a node
// seeds its hybrid logical clock above it at start. It is the zero version
// for an engine that never held anything.
func (e *Engine) MaxVersion() Version {
	return e.ix.maxVer.get()
}

// AboveMax reports whether v is newer than MaxVersion, and so than every
// version of every key the engine holds, without taking a lock. An Apply
// running at the same moment may raise the maximum past v unseen: a
// caller that stamps a write with v on this answer must still check that
// its write won.
func (e *Engine) AboveMax(v Version) bool {
	return e.ix.maxVer.below(v)
}

// Digests returns one hash per bucket over the replicated (not Local)
// entries, tombstones and expiry markers included: the XOR of a 64-bit
// hash of each entry's key, version, expiry and deleted flag. Two engines
// holding the same replicated entries have the same digests, whatever the
// order of writes and whether or not their reapers have freed expired
// values yet. Bucket b's digest is the XOR of the LeafDigests of the leaves
// l with l % Buckets == b.
func (e *Engine) Digests() []uint64 {
	return e.ix.digests()
}

// LeafDigests returns one hash per leaf (see LeafOf), in a fresh slice of
// Leaves: the XOR of the same entry hashes as Digests over the replicated
// entries of that leaf.
func (e *Engine) LeafDigests() []uint64 {
	return e.ix.leafDigests()
}

// BucketEntries returns the replicated entries of one bucket (see
// BucketOf), tombstones and expiry markers included; nil for a bucket out
// of range. An expiry marker (or a value past its expiry) comes with a nil
// Value, no content type and its ExpiresAt, which has passed; it is not
// Deleted. Values alias the engine's memory.
func (e *Engine) BucketEntries(bucket int) []Entry {
	if bucket < 0 || bucket >= Buckets {
		return nil
	}
	return e.ix.bucketEntries(bucket, e.now())
}

// LeafEntries returns the replicated entries of one leaf (see LeafOf) as
// BucketEntries does; nil for a leaf out of range or without entries.
// Values alias the engine's memory.
func (e *Engine) LeafEntries(leaf int) []Entry {
	if leaf < 0 || leaf >= Leaves {
		return nil
	}
	return e.ix.leafEntries(leaf, e.now())
}

// Stats reads the engine's counters.
func (e *Engine) Stats() Stats {
	st := e.ix.stats()
	st.MemoryBudget = e.budget
	st.LogBytes = e.wal.Size()
	st.LastSeq = e.wal.LastSeq()
	st.SnapshotSeq = e.snapSeq.Load()
	return st
}

// Recovery says what Open recovered.
func (e *Engine) Recovery() RecoveryInfo {
	return e.rec
}

// Close stops the loops, writes a last snapshot, closes the log and the
// snapshot and releases the lock. Later calls return the first's result.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.gate.Lock()
		e.closed = true
		e.gate.Unlock()
		close(e.stop)
		e.loops.Wait()
		e.snapMu.Lock()
		err := e.snapshotLocked()
		e.finished = true
		e.snapMu.Unlock()
		e.metrics.unregister(e.cfg.Registerer)
		e.closeErr = errors.Join(err, e.closeFiles())
	})
	return e.closeErr
}

// closeFiles closes whatever is open, the lock last.
func (e *Engine) closeFiles() error {
	var errs []error
	if e.wal != nil {
		if err := e.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("engine: close log: %w", err))
		}
	}
	if e.db != nil {
		if err := e.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("engine: close snapshot: %w", err))
		}
	}
	if err := unlockDir(e.lock); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
