package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestAppendReplayReopen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, &Options{SegmentBytes: 512})
	if got := l.LastSeq(); got != 0 {
		t.Fatalf("LastSeq of a new log = %d", got)
	}
	appendN(t, l, 0, 50, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("want several segments with 512-byte segments, got %d", n)
	}

	l = openLog(t, dir, &Options{SegmentBytes: 512})
	rec := l.Recovery()
	if rec.Records != 50 || rec.FirstSeq != 1 || rec.LastSeq != 50 || rec.TornBytes != 0 {
		t.Fatalf("Recovery = %+v", rec)
	}
	appendN(t, l, 50, 10, 51)
	got := replayAll(t, l, 0)
	if len(got) != 60 {
		t.Fatalf("replayed %d records, want 60", len(got))
	}
	for i := range 60 {
		if !bytes.Equal(got[uint64(i+1)], payloadFor(i)) {
			t.Fatalf("record %d = %q, want %q", i+1, got[uint64(i+1)], payloadFor(i))
		}
	}
	if got := replayAll(t, l, 55); len(got) != 5 {
		t.Fatalf("Replay(55) gave %d records, want 5", len(got))
	}
}

func TestConcurrentAppends(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncEverySecond, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := &Options{SegmentBytes: 4096, Sync: mode}
			l := openLog(t, dir, opts)
			const workers, each = 16, 40
			var mu sync.Mutex
			bySeq := map[uint64][]byte{}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						p := payloadFor(w*each + i)
						seq, err := l.Append(p)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						if _, dup := bySeq[seq]; dup {
							t.Errorf("seq %d given twice", seq)
						}
						bySeq[seq] = p
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			const total = workers * each
			checkDense(t, bySeq, total)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, opts)
			if n := len(segmentFiles(t, dir)); n < 2 {
				t.Fatalf("want rollover, got %d segment", n)
			}
			got := replayAll(t, l, 0)
			if len(got) != total {
				t.Fatalf("replayed %d records, want %d", len(got), total)
			}
			for seq, p := range bySeq {
				if !bytes.Equal(got[seq], p) {
					t.Fatalf("seq %d replays %q, want %q", seq, got[seq], p)
				}
			}
			if seq, err := l.Append([]byte("next")); err != nil || seq != total+1 {
				t.Fatalf("Append after reopen = %d, %v; want %d", seq, err, total+1)
			}
		})
	}
}

// checkDense fails unless the keys of bySeq are exactly 1..n.
func checkDense(t *testing.T, bySeq map[uint64][]byte, n int) {
	t.Helper()
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	if len(seqs) != n {
		t.Fatalf("%d sequence numbers, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequence numbers not dense: position %d has %d", i, s)
		}
	}
}

func TestOversizedRecord(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentBytes: 256}
	l := openLog(t, dir, opts)
	big := bytes.Repeat([]byte{0xab}, 1000)
	appendN(t, l, 0, 2, 1)
	if seq, err := l.Append(big); err != nil || seq != 3 {
		t.Fatalf("Append(big) = %d, %v", seq, err)
	}
	appendN(t, l, 3, 2, 4)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	got := replayAll(t, l, 0)
	if len(got) != 5 || !bytes.Equal(got[3], big) {
		t.Fatalf("replay: %d records, record 3 intact %v", len(got), bytes.Equal(got[3], big))
	}
}

func TestEmptyPayload(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	for i := range 3 {
		if seq, err := l.Append(nil); err != nil || seq != uint64(i+1) {
			t.Fatalf("Append(nil) = %d, %v", seq, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, nil)
	if got := replayAll(t, l, 0); len(got) != 3 {
		t.Fatalf("replayed %d empty records, want 3", len(got))
	}
}

func TestReleaseAndSize(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentBytes: 256}
	l := openLog(t, dir, opts)
	appendN(t, l, 0, 40, 1)
	before := segmentFiles(t, dir)
	size := l.Size()
	var want int64
	for i := range 40 {
		want += frameSize(len(payloadFor(i)))
	}
	if size != want {
		t.Fatalf("Size = %d, want %d", size, want)
	}

	// Find the segment holding record 20: everything before it goes.
	var keepFrom string
	l.segMu.Lock()
	for _, s := range l.segs {
		if s.firstSeq <= 20 && 20 <= s.lastSeq() {
			keepFrom = filepath.Base(s.path)
		}
	}
	l.segMu.Unlock()
	if err := l.Release(20); err != nil {
		t.Fatal(err)
	}
	after := segmentFiles(t, dir)
	for _, name := range before {
		_, err := os.Stat(filepath.Join(dir, name))
		covered := name < keepFrom
		if name == keepFrom {
			// Holds 20 and maybe more; kept unless its last record is 20.
			continue
		}
		if covered != errors.Is(err, os.ErrNotExist) {
			t.Fatalf("segment %s: covered=%v, stat err %v (before %v, after %v)", name, covered, err, before, after)
		}
	}
	if l.Size() >= size {
		t.Fatalf("Size after Release = %d, not below %d", l.Size(), size)
	}
	got := replayAll(t, l, 20)
	if len(got) != 20 || !bytes.Equal(got[21], payloadFor(20)) {
		t.Fatalf("replay after release: %d records", len(got))
	}
	if err := l.Replay(0, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrReleased) {
		t.Fatalf("Replay(0) after release: %v, want ErrReleased", err)
	}

	// Releasing everything keeps the active segment, and the log reopens.
	if err := l.Release(1 << 40); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after releasing all, want the active one", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	appendN(t, l, 40, 1, 41)
	if got := replayAll(t, l, 40); len(got) != 1 {
		t.Fatalf("replay after reopen: %d records", len(got))
	}
}

func TestSequenceGapIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentBytes: 256}
	l := openLog(t, dir, opts)
	appendN(t, l, 0, 40, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names := segmentFiles(t, dir)
	if len(names) < 3 {
		t.Fatalf("want 3+ segments, got %v", names)
	}
	if err := os.Remove(filepath.Join(dir, names[1])); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, opts)
	if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(names[2])) {
		t.Fatalf("Open with a missing segment: %v, want ErrCorrupt naming %s", err, names[2])
	}
}

func TestObserveSync(t *testing.T) {
	var mu sync.Mutex
	n := 0
	l := openLog(t, t.TempDir(), &Options{SegmentBytes: 4096, ObserveSync: func(d time.Duration) {
		mu.Lock()
		n++
		mu.Unlock()
	}})
	appendN(t, l, 0, 3, 1)
	mu.Lock()
	defer mu.Unlock()
	if n < 3 {
		t.Fatalf("ObserveSync called %d times for 3 serial SyncAlways appends", n)
	}
}

func TestReplayStopsOnError(t *testing.T) {
	l := openLog(t, t.TempDir(), &Options{SegmentBytes: 4096})
	appendN(t, l, 0, 5, 1)
	stop := errors.New("stop here")
	calls := 0
	err := l.Replay(0, func(seq uint64, _ []byte) error {
		calls++
		if seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Replay = %v after %d calls; want the callback's error after 3", err, calls)
	}
}

// TestReleaseWhileAppending runs Release, Size and LastSeq beside appends
// (for the race detector) and checks the log reopens whole.
func TestReleaseWhileAppending(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentBytes: 512, Sync: SyncNever}
	l := openLog(t, dir, opts)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := l.Append(payloadFor(w*50 + i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	released := uint64(0)
	deadline := time.Now().Add(10 * time.Second)
	for released < 150 {
		if time.Now().After(deadline) {
			t.Fatalf("appends stalled at %d", released)
		}
		if last := l.LastSeq(); last > released {
			released = last
			if err := l.Release(released); err != nil {
				t.Fatal(err)
			}
			_ = l.Size()
		}
		runtime.Gosched()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	if got := l.Recovery().LastSeq; got != 200 {
		t.Fatalf("LastSeq after reopen = %d, want 200", got)
	}
	if got := replayAll(t, l, released); len(got) != int(200-released) {
		t.Fatalf("replayed %d records after %d, want %d", len(got), released, 200-released)
	}
}
