package engine

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/disperse/disperse/wal"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Engine. Zero fields take the defaults named.
type Config struct {
	// Dir holds the log (Dir/wal), the snapshot (Dir/snapshot.db) and the
	// lock file (Dir/LOCK). Required.
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
	// version's wall time, and an expiry marker after its ExpiresAt, before
	// it is collected. Default 24h.
	TombstoneTTL time.Duration
	// Now is the clock for expiry. Default time.Now.
	Now func() time.Time
	// FS is the log's file system (a fault seam for tests). Default: the OS.
	FS wal.FS
	// Logger receives recovery and snapshot lines. Default: discard.
	Logger *slog.Logger
	// Registerer, if set, receives the engine's metrics. Default: none.
	Registerer prometheus.Registerer
	// MaxMemory bounds the memory the engine plans for, in bytes: what the
	// index is charged stays within MaxMemory less a quarter and 16 MiB;
	// the rest is the collector's headroom and what requests and
	// snapshots allocate for a while (see Memory in doc.go). At the bound,
	// Eviction decides. Default 0: no bound; else at least MinMaxMemory.
	MaxMemory int64
	// Eviction is the policy at MaxMemory. Default EvictAllKeys.
	Eviction Policy
	// SetMemoryLimit sets the process's Go memory limit
	// (debug.SetMemoryLimit) to MaxMemory at Open, so that the collector
	// works harder rather than let the heap pass the bound. The limit is
	// process-wide: a server sets it; tests that run several engines in one
	// process leave it alone. Default false.
	SetMemoryLimit bool
}

// Defaults of Config.
const (
	DefaultSegmentBytes     = 64 << 20
	DefaultSnapshotInterval = 60 * time.Second
	DefaultSnapshotWALBytes = 64 << 20
	DefaultTombstoneTTL     = 24 * time.Hour
)

// DefaultConfig returns a Config for dir with every default filled in.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:              dir,
		Sync:             wal.SyncAlways,
		SegmentBytes:     DefaultSegmentBytes,
		SnapshotInterval: DefaultSnapshotInterval,
		SnapshotWALBytes: DefaultSnapshotWALBytes,
		TombstoneTTL:     DefaultTombstoneTTL,
		Now:              time.Now,
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("engine: Dir is required")
	case c.Sync < wal.SyncAlways || c.Sync > wal.SyncNever:
		return fmt.Errorf("engine: bad Sync mode %v", c.Sync)
	case c.SegmentBytes < 0:
		return fmt.Errorf("engine: SegmentBytes %d is negative", c.SegmentBytes)
	case c.SnapshotInterval < 0:
		return fmt.Errorf("engine: SnapshotInterval %v is negative", c.SnapshotInterval)
	case c.SnapshotWALBytes < 0:
		return fmt.Errorf("engine: SnapshotWALBytes %d is negative", c.SnapshotWALBytes)
	case c.TombstoneTTL < 0:
		return fmt.Errorf("engine: TombstoneTTL %v is negative", c.TombstoneTTL)
	case c.MaxMemory < 0:
		return fmt.Errorf("engine: MaxMemory %d is negative", c.MaxMemory)
	case c.MaxMemory > 0 && c.MaxMemory < MinMaxMemory:
		return fmt.Errorf("engine: MaxMemory %d is below the smallest bound, %d", c.MaxMemory, int64(MinMaxMemory))
	case c.Eviction > EvictVolatileTTL:
		return fmt.Errorf("engine: bad Eviction policy %v", c.Eviction)
	}
	return nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	if c.SegmentBytes == 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = d.SnapshotInterval
	}
	if c.SnapshotWALBytes == 0 {
		c.SnapshotWALBytes = d.SnapshotWALBytes
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = d.TombstoneTTL
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.MaxMemory > 0 {
		// A snapshot holds what it writes (and the pages it touches) in
		// memory until it commits: keep that a small part of the bound.
		c.SnapshotWALBytes = min(c.SnapshotWALBytes, max(c.MaxMemory/snapshotShare, 1<<20))
	}
	return c
}

// Stats is a point-in-time view of the engine.
type Stats struct {
	Keys        int   // live keys (values); an expired value counts until the reaper makes it a marker
	Tombstones  int   // tombstones and expiry markers: keys whose visible slot is one
	LogBytes    int64 // bytes in the log on disk
	LastSeq     uint64
	SnapshotSeq uint64 // log sequence number the snapshot covers
	KeyBytes    int64  // bytes of keys held
	ValueBytes  int64  // bytes of values held (both slots)
	// Stubs are the keys whose value was evicted: the index keeps their
	// key, version and expiry (Entry.Evicted).
	Stubs int
	// MemoryUsed is what the accounting charges for the index (see Memory
	// in doc.go); MemoryBudget is the most it may charge, 0 without
	// MaxMemory.
	MemoryUsed, MemoryBudget int64
	// Evictions counts values evicted at the bound since Open (each leaves
	// a stub); StubsDropped counts stubs dropped under pressure.
	Evictions, StubsDropped int64
}

// RecoveryInfo says what Open recovered.
type RecoveryInfo struct {
	SnapshotEntries int   // entries loaded from the snapshot
	ExpiredSkipped  int   // slots not kept: tombstones and expiry markers past collection, expired local values
	LogRecords      int64 // log records replayed
	Log             wal.RecoveryInfo
	Took            time.Duration
}
