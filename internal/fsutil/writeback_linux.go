package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback asks the kernel to start writing the n bytes of f at off
// to the disk, without waiting for them. A later fsync then has only the
// rest to wait for: the disk works while the writer is still producing.
// It is a hint; an error only means the writeback starts later.
func StartWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
