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

// ioError wraps err from an operation on file at offset in ErrDiskFull or
// ErrIO, keeping err reachable with errors.Is.
func ioError(op, file string, off int64, err error) error {
	kind := ErrIO
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		kind = ErrDiskFull
	}
	return fmt.Errorf("%w: %s %s at offset %d: %w", kind, op, file, off, err)
}
