package engine

import (
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// populateFlag asks the kernel to map the whole snapshot at once when it
// is loaded, instead of one page fault per page as the cursor walks it.
const populateFlag = syscall.MAP_POPULATE

// dropResident tells the kernel that the writable snapshot handle's
// mapped pages are not needed in this process. Opening the handle walks
// every page (to rebuild the freelist) and a snapshot touches the pages it
// changes; without this they would count in the node's resident memory for
// as long as it runs. The mapping is read-only and shared, so nothing is
// lost. Callers hold off snapshots (Open, or e.snapMu after a commit), the
// only users of the handle.
//
// The pages are reclaimed, not only unmapped: the next snapshot reads the
// ones it needs from the disk again, the price of a low resident size. With
// MADV_DONTNEED the pages stayed in the page cache and a snapshot's reads
// cost no I/O, but each fault then mapped the cached pages around it as
// well (the kernel's fault-around): at a 128 MiB bound under PUTs to 2M
// keys, resident peaks of 175-178 MiB against 143-145, for disk reads of
// 2-3 MB in 90 s against 1.3-1.4 GB (BENCHMARKS.md, Memory).
func dropResident(db *bolt.DB) {
	if db == nil {
		return
	}
	// Only the pages in use, below the high-water mark, are surely mapped:
	// bbolt grows the file ahead of its map, and madvise past the map
	// would reach memory that is not the file's.
	var size int64
	if err := db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil || size == 0 {
		return
	}
	page := int64(os.Getpagesize())
	n := size / page * page
	// MADV_PAGEOUT, not MADV_DONTNEED: it reclaims the clean file pages
	// just the same, and destroys nothing even if the range were ever
	// wrong (anonymous memory would be paged out, never zeroed).
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, db.Info().Data, uintptr(n), unix.MADV_PAGEOUT)
}
