package wal

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestPreparedSegmentWrittenOnlyWhenCommitsFsync: the next segment of a
// log that fsyncs every commit is preallocated by writing zeros (its
// commits then flush data alone); any other log's is reserved without a
// write. Either way the file has the segment's size and reads as zeros.
func TestPreparedSegmentWrittenOnlyWhenCommitsFsync(t *testing.T) {
	const size = 1 << 20
	for _, zeros := range []bool{true, false} {
		fs := NewFaultFS(nil)
		p := newFilePipeline(fs, t.TempDir(), size, zeros)
		f, _, err := p.next()
		p.close()
		if err != nil {
			t.Fatal(err)
		}
		writes, _ := fs.Counts()
		if zeros && writes == 0 || !zeros && writes != 0 {
			t.Fatalf("zeros %v: %d writes to prepare a segment", zeros, writes)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size || !bytes.Equal(got, make([]byte, size)) {
			t.Fatalf("zeros %v: the prepared segment holds %d bytes, not %d zeros", zeros, len(got), size)
		}
	}
}

// TestReservedSegmentOnAFullDisk: reserving the next segment on a full
// disk fails with ErrDiskFull, as writing its zeros does.
func TestReservedSegmentOnAFullDisk(t *testing.T) {
	for _, zeros := range []bool{true, false} {
		fs := NewFaultFS(nil)
		fs.SetDiskFull(true)
		p := newFilePipeline(fs, t.TempDir(), 1<<20, zeros)
		_, _, err := p.next()
		p.close()
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("zeros %v: preparing a segment on a full disk: %v, want ErrDiskFull", zeros, err)
		}
	}
}

// TestOnlySyncAlwaysWritesZeros: the log chooses zeros for SyncAlways only.
func TestOnlySyncAlwaysWritesZeros(t *testing.T) {
	for mode, want := range map[SyncMode]bool{SyncAlways: true, SyncEverySecond: false, SyncNever: false} {
		l := openLog(t, t.TempDir(), &Options{Sync: mode, SegmentBytes: 4096})
		if l.pipe.zeros != want {
			t.Fatalf("sync mode %v: zeros %v", mode, l.pipe.zeros)
		}
	}
}

// TestActiveSegmentGrownAsTheModeWants: a log reopened with larger
// segments grows its active segment at open as it prepares new ones: with
// zeros when every commit fsyncs, by a reservation otherwise.
func TestActiveSegmentGrownAsTheModeWants(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncNever} {
		dir := t.TempDir()
		l := openLog(t, dir, &Options{Sync: mode, SegmentBytes: 4096})
		if _, err := l.Append([]byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		fs := NewFaultFS(nil)
		l = openLog(t, dir, &Options{Sync: mode, SegmentBytes: 1 << 20, FS: fs})
		writes, _ := fs.Counts()
		if mode == SyncAlways && writes == 0 || mode == SyncNever && writes != 0 {
			t.Fatalf("sync mode %v: %d writes to grow the active segment and prepare the next", mode, writes)
		}
		if _, err := l.Append([]byte("two")); err != nil {
			t.Fatal(err)
		}
	}
}
