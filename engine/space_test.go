package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/disperse/disperse/internal/fsutil"
	"github.com/disperse/disperse/wal"
)

// disk is a file system with a fixed amount of free space, shared by the
// log (as its wal.FS) and the snapshot file (through hookSnapshotWrites).
// A file's allocation is its highest written byte: a write past it takes
// space, a truncation below it or a removal gives space back, and growing
// a file by truncation takes none (a sparse extent, as on Linux file
// systems). A write that does not fit writes what fits and fails with
// ENOSPC. The snapshot file, which bbolt grows and the engine shrinks
// without the disk seeing it, is checked with stat at every call.
type disk struct {
	mu       sync.Mutex
	free     int64
	files    map[string]*extent // by current path
	external map[string]*extent // files not opened through the disk
}

// extent is the space of one file, whatever its name now.
type extent struct{ alloc int64 }

func newDisk(free int64) *disk {
	return &disk{free: free, files: map[string]*extent{}, external: map[string]*extent{}}
}

// setFree sets the free space, as filling or emptying the disk would.
func (d *disk) setFree(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free = n
}

// allocated is the space path holds.
func (d *disk) allocated(path string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.statExternal()
	if x := d.files[path]; x != nil {
		return x.alloc
	}
	return 0
}

// statExternal gives back the space of external files truncated below
// their allocation. Called with d.mu held.
func (d *disk) statExternal() {
	for p, x := range d.external {
		if fi, err := os.Stat(p); err == nil && fi.Size() < x.alloc {
			d.free += x.alloc - fi.Size()
			x.alloc = fi.Size()
		}
	}
}

// open returns the extent of path, which holds size bytes if the disk has
// not seen it yet.
func (d *disk) open(path string, size int64, external bool) *extent {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.files[path]
	if x == nil {
		x = &extent{alloc: size}
		d.files[path] = x
		if external {
			d.external[path] = x
		}
	}
	return x
}

// write reserves space for n bytes at off in x and returns how many of
// them fit.
func (d *disk) write(x *extent, off, n int64) (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.statExternal()
	if off+n <= x.alloc {
		return n, true
	}
	if off+n-x.alloc <= d.free {
		d.free -= off + n - x.alloc
		x.alloc = off + n
		return n, true
	}
	fit := max(x.alloc+d.free-off, 0)
	if end := off + fit; end > x.alloc {
		d.free -= end - x.alloc
		x.alloc = end
	}
	return fit, false
}

func (d *disk) truncate(x *extent, size int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if size < x.alloc {
		d.free += x.alloc - size
		x.alloc = size
	}
}

// remove gives back the space of path (as if no descriptor held it open).
func (d *disk) remove(path string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if x := d.files[path]; x != nil {
		d.free += x.alloc
		x.alloc = 0
		delete(d.files, path)
	}
}

func (d *disk) rename(from, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if x := d.files[to]; x != nil {
		d.free += x.alloc
		x.alloc = 0
	}
	if x := d.files[from]; x != nil {
		d.files[to] = x
		delete(d.files, from)
	}
}

// diskFS is the log's view of a disk.
type diskFS struct{ d *disk }

func (fs diskFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	x := fs.d.open(name, fi.Size(), false)
	if flag&os.O_TRUNC != 0 {
		fs.d.truncate(x, 0)
	}
	return &diskFile{File: f, d: fs.d, x: x}, nil
}

func (fs diskFS) Remove(name string) error {
	if err := os.Remove(name); err != nil {
		return err
	}
	fs.d.remove(name)
	return nil
}

func (fs diskFS) Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	fs.d.rename(from, to)
	return nil
}

func (fs diskFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

func (fs diskFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

func (fs diskFS) SyncDir(path string) error { return fsutil.SyncDir(path) }

type diskFile struct {
	*os.File
	d *disk
	x *extent
}

func (f *diskFile) Write(p []byte) (int, error) {
	off, err := f.File.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	n, ok := f.d.write(f.x, off, int64(len(p)))
	w, err := f.File.Write(p[:n])
	if err == nil && !ok {
		err = &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return w, err
}

func (f *diskFile) Truncate(size int64) error {
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	f.d.truncate(f.x, size)
	return nil
}

// hookSnapshotWrites makes e's snapshot file write through d. bbolt has no
// file-system seam (its OpenFile hook must return an *os.File), so this
// replaces the function its transactions write pages with, DB.ops.writeAt,
// and fails the test if bbolt no longer has it.
func hookSnapshotWrites(tb testing.TB, e *Engine, d *disk) {
	tb.Helper()
	f := reflect.ValueOf(e.db).Elem().FieldByName("ops")
	if f.IsValid() {
		f = f.FieldByName("writeAt")
	}
	type writeAt = func([]byte, int64) (int, error)
	if !f.IsValid() || f.Type() != reflect.TypeFor[writeAt]() {
		tb.Fatal("bbolt's DB has no ops.writeAt to hook: update hookSnapshotWrites for this bbolt version")
	}
	p := (*writeAt)(unsafe.Pointer(f.UnsafeAddr()))
	orig, path := *p, e.db.Path()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	// What the file holds is its blocks, not its length: bbolt grows it
	// by truncation ahead of what it writes (a sparse tail).
	x := d.open(path, fi.Sys().(*syscall.Stat_t).Blocks*512, true)
	*p = func(b []byte, off int64) (int, error) {
		n, ok := d.write(x, off, int64(len(b)))
		w, err := orig(b[:n], off)
		if err == nil && !ok {
			err = &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
		}
		return w, err
	}
}

// TestFailedSnapshotGivesSpaceBack: on a full disk, a snapshot that fails
// part way gives back the space its pages took, so that once some space is
// freed the log can take it and writes are accepted again, without a
// restart, although the retried snapshot still does not fit.
func TestFailedSnapshotGivesSpaceBack(t *testing.T) {
	d := newDisk(1 << 40)
	cfg := testConfig(t.TempDir())
	cfg.FS = diskFS{d}
	e := openTest(t, cfg)
	hookSnapshotWrites(t, e, d)
	snapPath := e.db.Path()

	value := make([]byte, 3000)
	acked := map[string]bool{}
	apply := func(key string) error {
		_, err := e.Apply(Entry{Key: key, Value: value, Version: ver(1, 0, 1)})
		if err == nil {
			acked[key] = true
		}
		return err
	}
	for i := range 1500 { // about 4.5 MB of log, none of it snapshotted
		if err := apply(fmt.Sprint("before-", i)); err != nil {
			t.Fatal(err)
		}
	}

	// The disk fills up: writes go on until the log needs a new segment.
	d.setFree(0)
	var full error
	for i := 0; full == nil; i++ {
		if i > 1000 {
			t.Fatal("the log took 3 MB on a full disk")
		}
		full = apply(fmt.Sprint("filling-", i))
	}
	if !errors.Is(full, wal.ErrDiskFull) {
		t.Fatalf("Apply on a full disk: %v, want wal.ErrDiskFull", full)
	}

	fileSize := func() int64 {
		t.Helper()
		fi, err := os.Stat(snapPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	snapshot := func(stage string) {
		t.Helper()
		before, size := d.allocated(snapPath), fileSize()
		err := e.Snapshot()
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s: snapshot: %v, want ENOSPC", stage, err)
		}
		if after := d.allocated(snapPath); after > before {
			t.Fatalf("%s: the failed snapshot kept %d bytes of the disk", stage, after-before)
		}
		if after := fileSize(); after > size {
			t.Fatalf("%s: the failed snapshot left the file at %d bytes, %d before", stage, after, size)
		}
	}
	snapshot("full disk")

	// 2.5 MiB are freed: enough for two log segments of 1 MiB, not for the
	// snapshot, which must give back what it took. The log may prepare a
	// segment in the background before, while or after the snapshot runs;
	// either way two segments fit in what is left.
	d.setFree(5 << 19)
	snapshot("after freeing 2.5 MiB")
	for i := range 560 { // about 1.6 MiB: the log needs two new segments
		if err := apply(fmt.Sprint("after-", i)); err != nil {
			t.Fatalf("write %d after space was freed: %v", i, err)
		}
	}

	// With room for everything, the snapshot is written and the log shrinks.
	d.setFree(1 << 40)
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, testConfig(cfg.Dir))
	if got := r.Stats().Keys; got != len(acked) {
		t.Fatalf("%d keys after a restart, want %d", got, len(acked))
	}
	for k := range acked {
		if _, ok := r.Get(k); !ok {
			t.Fatalf("acknowledged %s is missing after a restart", k)
		}
	}
}

// TestGiveBackKeepsCommittedPages: giving back space never cuts into the
// pages of the last committed snapshot.
func TestGiveBackKeepsCommittedPages(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	value := make([]byte, 1000)
	for i := range 2000 {
		mustApply(t, e, Entry{Key: fmt.Sprint("k", i), Value: value, Version: ver(1, 0, 1)})
	}
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := e.giveBack(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(e.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 2000*1000 {
		t.Fatalf("snapshot file cut to %d bytes", fi.Size())
	}
	mustApply(t, e, put("after", "v", ver(2, 0, 1)))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, testConfig(dir))
	if got := r.Stats().Keys; got != 2001 {
		t.Fatalf("%d keys after a restart, want 2001", got)
	}
}
