package wal

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
)

// TestFaults: a batch that fails to write or fsync is cut back, its callers
// get ErrIO or ErrDiskFull, nothing of it replays, and the next append
// (fault cleared) takes the next sequence number.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*FaultFS)
		want error
	}{
		{"write", func(fs *FaultFS) { fs.SetWriteError(syscall.EIO) }, ErrIO},
		{"fsync", func(fs *FaultFS) { fs.SetSyncError(syscall.EIO) }, ErrIO},
		{"nospace", func(fs *FaultFS) { fs.SetWriteError(syscall.ENOSPC) }, ErrDiskFull},
		{"quota", func(fs *FaultFS) { fs.SetWriteError(syscall.EDQUOT) }, ErrDiskFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := NewFaultFS(nil)
			opts := &Options{FS: fs, SegmentBytes: 4096}
			l := openLog(t, dir, opts)
			appendN(t, l, 0, 5, 1)

			tc.set(fs)
			failed := []byte("this batch must not survive")
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					seq, err := l.Append(failed)
					if !errors.Is(err, tc.want) {
						t.Errorf("Append under fault = %d, %v; want %v", seq, err, tc.want)
					}
				})
			}
			wg.Wait()
			if got := l.LastSeq(); got != 5 {
				t.Fatalf("LastSeq after failed batch = %d, want 5", got)
			}
			fs.Clear()
			if seq, err := l.Append([]byte("after")); err != nil || seq != 6 {
				t.Fatalf("Append after clearing the fault = %d, %v; want 6", seq, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, &Options{SegmentBytes: 4096})
			if r := l.Recovery(); r.TornBytes != 0 || r.LastSeq != 6 {
				t.Fatalf("Recovery = %+v; want a clean log ending at 6", r)
			}
			got := replayAll(t, l, 0)
			for seq, p := range got {
				if bytes.Equal(p, failed) {
					t.Fatalf("record %d of the failed batch replayed", seq)
				}
			}
			if len(got) != 6 || string(got[6]) != "after" {
				t.Fatalf("replay: %d records, record 6 %q", len(got), got[6])
			}
		})
	}
}

// TestFailedCutBack: when the batch cannot be cut back, the log refuses
// appends until it is reopened, and reopening repairs it.
func TestFailedCutBack(t *testing.T) {
	dir := t.TempDir()
	fs := NewFaultFS(nil)
	l := openLog(t, dir, &Options{FS: fs, SegmentBytes: 4096})
	appendN(t, l, 0, 5, 1)
	fs.SetWriteError(syscall.EIO)
	fs.SetTruncateError(syscall.EIO)
	if _, err := l.Append(bytes.Repeat([]byte{7}, 100)); !errors.Is(err, ErrIO) {
		t.Fatalf("Append = %v, want ErrIO", err)
	}
	fs.Clear()
	if _, err := l.Append([]byte("refused")); !errors.Is(err, ErrIO) {
		t.Fatalf("Append after a failed cut back = %v, want ErrIO", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Half the failed record is on disk: reopening cuts it as a torn tail.
	l = openLog(t, dir, &Options{SegmentBytes: 4096})
	if r := l.Recovery(); r.TornBytes == 0 || r.LastSeq != 5 {
		t.Fatalf("Recovery = %+v; want a torn tail after record 5", r)
	}
	appendN(t, l, 5, 1, 6)
}

// TestRolloverDiskFull: on a full disk the preallocated segment still takes
// records, but the file pipeline cannot make the next one; the append that
// needs it fails with ErrDiskFull and one after space comes back rolls over.
func TestRolloverDiskFull(t *testing.T) {
	dir := t.TempDir()
	fs := NewFaultFS(nil)
	opts := &Options{FS: fs, SegmentBytes: 256}
	l := openLog(t, dir, opts)
	appendN(t, l, 0, 8, 1) // two segments; the pipeline holds a third
	fs.SetDiskFull(true)
	var seq uint64 = 8
	var err error
	for seq < 100 && err == nil {
		seq, err = l.Append(payloadFor(int(seq)))
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Append on a full disk = %v, want ErrDiskFull", err)
	}
	last := l.LastSeq()
	t.Logf("disk full after record %d", last)
	if last <= 8 {
		t.Fatalf("no record went into the preallocated space on a full disk (last %d)", last)
	}
	fs.Clear()
	if got, err := l.Append([]byte("after")); err != nil || got != last+1 {
		t.Fatalf("Append after space came back = %d, %v; want %d", got, err, last+1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	if got := replayAll(t, l, 0); len(got) != int(last+1) {
		t.Fatalf("replayed %d records, want %d", len(got), last+1)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
