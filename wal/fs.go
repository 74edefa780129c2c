package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/disperse/disperse/internal/fsutil"
)

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

func (osFS) SyncDir(path string) error { return fsutil.SyncDir(path) }

// osFile is an *os.File whose Sync is fdatasync(2): the log preallocates
// its segments, so the file size and other metadata need not be flushed
// with every commit.
type osFile struct{ *os.File }

func (f osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// zeroChunk is the size of the zero buffer used to preallocate.
const zeroChunk = 1 << 20

// preallocate fills [from, to) of f with zeros by writing them, which
// allocates the blocks as written extents (see doc.go for why not
// fallocate), and leaves the file offset at to.
func preallocate(f File, from, to int64) error {
	if from >= to {
		return nil
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	zeros := make([]byte, min(zeroChunk, to-from))
	for off := from; off < to; {
		n := min(int64(len(zeros)), to-off)
		w, err := f.Write(zeros[:n])
		off += int64(w)
		if err != nil {
			return err
		}
	}
	return nil
}

// allocator is a File that can reserve blocks without writing them.
type allocator interface {
	// Allocate reserves [off, off+n), growing the file to cover it; the
	// blocks read as zeros. errors.ErrUnsupported: the file system cannot.
	Allocate(off, n int64) error
}

// Allocate is fallocate(2).
func (f osFile) Allocate(off, n int64) error {
	for {
		switch err := unix.Fallocate(int(f.Fd()), 0, off, n); err {
		case nil:
			return nil
		case unix.EINTR:
		case unix.EOPNOTSUPP, unix.ENOSYS:
			return errors.ErrUnsupported
		default:
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
	}
}

// reserve allocates [from, to) of f without writing it where the file
// system can (allocator), and by writing zeros where it cannot. That suits
// a log that does not fsync every commit, where the first write into each
// block converting its extent costs nothing that matters (see doc.go).
func reserve(f File, from, to int64) error {
	if from >= to {
		return nil
	}
	if a, ok := f.(allocator); ok {
		if err := a.Allocate(from, to-from); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	return preallocate(f, from, to)
}

// ioError wraps err from an operation on file at offset in ErrDiskFull or
// ErrIO, keeping err reachable with errors.Is.
func ioError(op, file string, off int64, err error) error {
	kind := ErrIO
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		kind = ErrDiskFull
	}
	return fmt.Errorf("%w: %s %s at offset %d: %w", kind, op, file, off, err)
}
