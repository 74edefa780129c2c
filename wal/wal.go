package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// SyncMode says when an appended record counts as committed.
type SyncMode int

const (
	// SyncAlways: Append returns after an fsync (fdatasync) that covers the
	// record. Appends that arrive while one fsync runs share the next one.
	SyncAlways SyncMode = iota
	// SyncEverySecond: Append returns after write(2); a background fsync runs
	// once a second, so a machine crash loses at most about a second.
	SyncEverySecond
	// SyncNever: Append returns after write(2); the OS decides when to flush.
	SyncNever
)

// ParseSyncMode reads "always", "everysec" or "never".
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "everysec":
		return SyncEverySecond, nil
	case "never":
		return SyncNever, nil
	}
	return 0, fmt.Errorf("wal: unknown sync mode %q (want always, everysec or never)", s)
}

// String returns the name ParseSyncMode reads.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncEverySecond:
		return "everysec"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Errors returned by the log. Callers test them with errors.Is.
var (
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrCorrupt: a record in the middle of the log fails its checksum or
	// framing. The wrapping error names the file and offset.
	ErrCorrupt = errors.New("wal: corrupt record")
	// ErrDiskFull: a write failed for lack of space (ENOSPC, EDQUOT).
	ErrDiskFull = errors.New("wal: disk full")
	// ErrIO: a write or fsync failed for another reason.
	ErrIO = errors.New("wal: i/o error")
	// ErrReleased: Replay was asked for records that Release has removed.
	ErrReleased = errors.New("wal: records released")
)

// File is the part of *os.File the log uses. Tests wrap it to inject faults.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
	Fd() uintptr
}

// FS is the file system seen by the log. A nil FS in Options means the
// operating system's. Tests supply one that fails writes, fsyncs or runs
// out of space.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	ReadDir(name string) ([]os.DirEntry, error)
	MkdirAll(path string, perm os.FileMode) error
	// SyncDir fsyncs a directory so that creates, renames and removes in it
	// are durable.
	SyncDir(path string) error
}

// Options configure a Log. A nil *Options means the defaults.
type Options struct {
	// Sync is when an append counts as committed. Default SyncAlways.
	Sync SyncMode
	// SegmentBytes is the size a segment is preallocated to; a new segment
	// starts when the next record would not fit. Default 64 MiB.
	SegmentBytes int64
	// FS is the file system. Default: the operating system's.
	FS FS
	// Logger receives recovery and repair lines. Default: discard.
	Logger *slog.Logger
	// ObserveSync, if set, is called with the duration of every fsync of
	// the segment being written (commits, the SyncEverySecond tick, rollover
	// and Close), on the log's writer goroutine. The background fsync of a
	// segment being preallocated is not reported. Default: none.
	ObserveSync func(time.Duration)
}

// DefaultOptions returns the options a nil *Options stands for.
func DefaultOptions() Options {
	return Options{Sync: SyncAlways, SegmentBytes: 64 << 20}
}

// Validate checks the options. Zero fields mean their defaults.
func (o *Options) Validate() error {
	switch {
	case o.Sync < SyncAlways || o.Sync > SyncNever:
		return fmt.Errorf("wal: unknown sync mode %d", int(o.Sync))
	case o.SegmentBytes < 0:
		return fmt.Errorf("wal: SegmentBytes %d is negative", o.SegmentBytes)
	}
	return nil
}

// resolve returns o with defaults filled in.
func resolve(o *Options) (Options, error) {
	r := DefaultOptions()
	if o == nil {
		r.FS = osFS{}
		r.Logger = slog.New(slog.DiscardHandler)
		return r, nil
	}
	if err := o.Validate(); err != nil {
		return r, err
	}
	r.Sync, r.FS, r.Logger, r.ObserveSync = o.Sync, o.FS, o.Logger, o.ObserveSync
	if o.SegmentBytes > 0 {
		r.SegmentBytes = o.SegmentBytes
	}
	if r.FS == nil {
		r.FS = osFS{}
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// RecoveryInfo says what Open found.
type RecoveryInfo struct {
	Segments  int    // segment files found
	Records   int64  // intact records found
	FirstSeq  uint64 // first sequence number in the log (0 if empty)
	LastSeq   uint64 // last sequence number in the log (0 if empty)
	TornBytes int64  // bytes cut off a torn tail (0 if none)
	TornFile  string // the file that was cut, if any
}
