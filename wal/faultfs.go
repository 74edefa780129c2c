package wal

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// FaultFS is an FS that passes everything to another FS (the operating
// system's by default) and fails writes, fsyncs or truncations on demand.
// It is for tests, of this package and of those built on the log, and is
// safe for concurrent use: faults can be set and cleared while the log runs.
//
// A write failed by SetWriteError first writes half of its bytes, as a
// real short write would, so that a caller must cope with partial data on
// disk. SetDiskFull is closer to a real full disk: writes inside a file's
// current size (its preallocated space) still succeed, and a write that
// would grow a file writes what fits and fails with ENOSPC.
//
//	fs := wal.NewFaultFS(nil)
//	l, _ := wal.Open(dir, &wal.Options{FS: fs})
//	fs.SetWriteError(syscall.ENOSPC)
//	_, err := l.Append(p) // errors.Is(err, wal.ErrDiskFull), nothing kept
//	fs.Clear()
//	_, err = l.Append(p) // succeeds with the next sequence number
//
// With SetDiskFull instead, appends go on succeeding until the segment's
// preallocated space is used up, and the one that needs a new segment
// fails with ErrDiskFull.
type FaultFS struct {
	base FS

	mu       sync.Mutex
	writeErr error // returned by File.Write
	syncErr  error // returned by File.Sync and SyncDir
	truncErr error // returned by File.Truncate
	diskFull bool  // writes may not grow files
	writes   int64 // File.Write calls that reached the base FS
	syncs    int64 // File.Sync calls that reached the base FS
}

// NewFaultFS returns a FaultFS over base; nil means the operating system's.
func NewFaultFS(base FS) *FaultFS {
	if base == nil {
		base = osFS{}
	}
	return &FaultFS{base: base}
}

// SetWriteError makes every write fail with err (nil: writes succeed).
func (fs *FaultFS) SetWriteError(err error) { fs.set(&fs.writeErr, err) }

// SetSyncError makes every file and directory fsync fail with err (nil:
// they succeed).
func (fs *FaultFS) SetSyncError(err error) { fs.set(&fs.syncErr, err) }

// SetTruncateError makes every truncation fail with err (nil: they succeed).
func (fs *FaultFS) SetTruncateError(err error) { fs.set(&fs.truncErr, err) }

// SetDiskFull makes writes that would grow a file fail with ENOSPC, or
// stops doing so.
func (fs *FaultFS) SetDiskFull(full bool) {
	fs.mu.Lock()
	fs.diskFull = full
	fs.mu.Unlock()
}

// Clear removes every fault.
func (fs *FaultFS) Clear() {
	fs.mu.Lock()
	fs.writeErr, fs.syncErr, fs.truncErr, fs.diskFull = nil, nil, nil, false
	fs.mu.Unlock()
}

// Counts returns how many file writes and fsyncs reached the base FS.
func (fs *FaultFS) Counts() (writes, syncs int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.writes, fs.syncs
}

func (fs *FaultFS) set(p *error, err error) {
	fs.mu.Lock()
	*p = err
	fs.mu.Unlock()
}

func (fs *FaultFS) get(p *error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return *p
}

// OpenFile opens name on the base FS and wraps the file.
func (fs *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs, name: name}, nil
}

// Remove passes to the base FS.
func (fs *FaultFS) Remove(name string) error { return fs.base.Remove(name) }

// Rename passes to the base FS.
func (fs *FaultFS) Rename(oldpath, newpath string) error { return fs.base.Rename(oldpath, newpath) }

// ReadDir passes to the base FS.
func (fs *FaultFS) ReadDir(name string) ([]os.DirEntry, error) { return fs.base.ReadDir(name) }

// MkdirAll passes to the base FS.
func (fs *FaultFS) MkdirAll(path string, perm os.FileMode) error { return fs.base.MkdirAll(path, perm) }

// SyncDir fails with the sync error if one is set, else passes on.
func (fs *FaultFS) SyncDir(path string) error {
	if err := fs.get(&fs.syncErr); err != nil {
		return &os.PathError{Op: "fsync", Path: path, Err: err}
	}
	return fs.base.SyncDir(path)
}

// faultFile is a File of a FaultFS.
type faultFile struct {
	File
	fs   *FaultFS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.get(&f.fs.writeErr); err != nil {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: f.name, Err: err}
	}
	f.fs.mu.Lock()
	f.fs.writes++
	full := f.fs.diskFull
	f.fs.mu.Unlock()
	if full {
		if room := f.room(); int64(len(p)) > room {
			n, _ := f.File.Write(p[:max(room, 0)])
			return n, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	return f.File.Write(p)
}

// room is how many bytes can be written at the file offset without
// growing the file.
func (f *faultFile) room() int64 {
	off, err := f.File.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0
	}
	fi, err := f.File.Stat()
	if err != nil {
		return 0
	}
	return fi.Size() - off
}

// Allocate fails as a write would (the write error, or ENOSPC past the
// file's size while the disk is full), else passes to the base file.
func (f *faultFile) Allocate(off, n int64) error {
	if err := f.fs.get(&f.fs.writeErr); err != nil {
		return &os.PathError{Op: "fallocate", Path: f.name, Err: err}
	}
	f.fs.mu.Lock()
	full := f.fs.diskFull
	f.fs.mu.Unlock()
	if full {
		if fi, err := f.File.Stat(); err != nil || off+n > fi.Size() {
			return &os.PathError{Op: "fallocate", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	a, ok := f.File.(allocator)
	if !ok {
		return errors.ErrUnsupported
	}
	return a.Allocate(off, n)
}

func (f *faultFile) Sync() error {
	if err := f.fs.get(&f.fs.syncErr); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.name, Err: err}
	}
	f.fs.mu.Lock()
	f.fs.syncs++
	f.fs.mu.Unlock()
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.get(&f.fs.truncErr); err != nil {
		return &os.PathError{Op: "truncate", Path: f.name, Err: err}
	}
	return f.File.Truncate(size)
}
