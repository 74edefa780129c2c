package engine

import (
	"errors"
	"log/slog"
	"time"

	"github.com/disperse/disperse/wal"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the engine. Log failures come through wrapped, so
// errors.Is(err, wal.ErrDiskFull) and errors.Is(err, wal.ErrIO) hold.
var (
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("engine: data directory is locked by another process")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine: closed")
)

// Buckets is the number of key-hash buckets anti-entropy compares.
const Buckets = 1024

// Config configures an Engine. Zero fields take the defaults named.
type Config struct {
	// Dir holds the log (Dir/wal), the snapshot (Dir/snapshot.db) and the
	// lock file. Required.
	Dir string
	// Sync is the log's commit mode. Default wal.SyncAlways.
	Sync wal.SyncMode
	// SegmentBytes is the log segment size. Default 64 MiB.
	SegmentBytes int64
	// SnapshotInterval: snapshot at least this often while there are
	// changes. Default 60s.
	SnapshotInterval time.Duration
	// SnapshotWALBytes: snapshot early once the log written since the last
	// snapshot passes this. Default 64 MiB.
	SnapshotWALBytes int64
	// TombstoneTTL is how long a replicated tombstone is kept after its
	// version's wall time before it is collected. Default 24h.
	TombstoneTTL time.Duration
	// Now is the clock for expiry. Default time.Now.
	Now func() time.Time
	// FS is the log's file system (a fault seam for tests). Default: the OS.
	FS wal.FS
	// Logger receives recovery and snapshot lines. Default: discard.
	Logger *slog.Logger
	// Registerer, if set, receives the engine's metrics.
	Registerer prometheus.Registerer
}

// Stats is a point-in-time view of the engine.
type Stats struct {
	Keys        int   // live keys (values, not tombstones)
	Tombstones  int   // tombstones kept
	LogBytes    int64 // bytes in the log on disk
	LastSeq     uint64
	SnapshotSeq uint64 // log sequence number the snapshot covers
	KeyBytes    int64  // bytes of keys held
	ValueBytes  int64  // bytes of values held
}

// RecoveryInfo says what Open recovered.
type RecoveryInfo struct {
	SnapshotEntries int   // entries loaded from the snapshot
	ExpiredSkipped  int   // expired entries not loaded
	LogRecords      int64 // log records replayed
	Log             wal.RecoveryInfo
	Took            time.Duration
}

// Engine is the in-memory index of one node with its log and snapshot.
// It is safe for concurrent use.
type Engine struct {
}

// Open locks cfg.Dir, loads the snapshot, replays the log after it and
// starts the expiry and snapshot loops. It returns only once the index is
// complete.
func Open(cfg Config) (*Engine, error) {
	panic("engine: not implemented")
}

// Apply makes ent durable in the log and then puts it in the index if its
// version is newer than what the index holds for the key. It reports whether
// ent won. On a log error nothing changes in memory.
func (e *Engine) Apply(ent Entry) (bool, error) {
	panic("engine: not implemented")
}

// ApplyBatch is Apply for many entries in one log record. It returns how
// many won.
func (e *Engine) ApplyBatch(ents []Entry) (int, error) {
	panic("engine: not implemented")
}

// Get returns the visible entry of key: not a tombstone, not expired.
func (e *Engine) Get(key string) (Entry, bool) {
	panic("engine: not implemented")
}

// List returns up to limit visible keys that start with prefix and sort
// after after, in byte order, and the key to continue after ("" when done).
func (e *Engine) List(prefix, after string, limit int) (keys []string, next string) {
	panic("engine: not implemented")
}

// Digests returns one hash per bucket over the replicated (not Local)
// entries, tombstones included.
func (e *Engine) Digests() []uint64 {
	panic("engine: not implemented")
}

// BucketEntries returns the replicated entries of one bucket.
func (e *Engine) BucketEntries(bucket int) []Entry {
	panic("engine: not implemented")
}

// Snapshot writes what changed since the last snapshot now.
func (e *Engine) Snapshot() error {
	panic("engine: not implemented")
}

// Stats reads the engine's counters.
func (e *Engine) Stats() Stats {
	panic("engine: not implemented")
}

// Recovery says what Open recovered.
func (e *Engine) Recovery() RecoveryInfo {
	panic("engine: not implemented")
}

// Close stops the loops, writes a last snapshot, closes the log and the
// snapshot and releases the lock.
func (e *Engine) Close() error {
	panic("engine: not implemented")
}
