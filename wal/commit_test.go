package wal

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateFS holds the fsyncs of segment files it opened under their .wal name
// (not the file pipeline's) at a gate while the gate is closed.
type gateFS struct {
	FS
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	entered chan struct{} // receives once per fsync that reaches a closed gate
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(name, segmentExt) {
		return f, nil
	}
	return gateFile{File: f, g: g}, nil
}

func (g *gateFS) close() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gateFS) open() {
	g.mu.Lock()
	close(g.gate)
	g.gate = nil
	g.mu.Unlock()
}

type gateFile struct {
	File
	g *gateFS
}

func (f gateFile) Sync() error {
	f.g.mu.Lock()
	gate := f.g.gate
	f.g.mu.Unlock()
	if gate != nil {
		f.g.entered <- struct{}{}
		<-gate
	}
	return f.File.Sync()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit: appends that arrive while an fsync runs are committed
// together by the next single write and fsync.
func TestGroupCommit(t *testing.T) {
	g := &gateFS{FS: osFS{}, entered: make(chan struct{}, 100)}
	var syncs atomic.Int64
	dir := t.TempDir()
	opts := &Options{FS: g, SegmentBytes: 1 << 20, ObserveSync: func(time.Duration) { syncs.Add(1) }}
	l := openLog(t, dir, opts)
	appendN(t, l, 0, 1, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts) // the segment is now opened by name, so gated
	g.close()
	before := syncs.Load()

	const n = 20
	var wg sync.WaitGroup
	wg.Go(func() { appendN(t, l, 1, 1, 2) })
	<-g.entered // the writer is inside the fsync of record 2
	for i := range n {
		wg.Go(func() {
			if _, err := l.Append(payloadFor(100 + i)); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, 5*time.Second, "appends to queue", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.queue) == n
	})
	g.open()
	wg.Wait()
	if got := syncs.Load() - before; got != 2 {
		t.Fatalf("%d fsyncs for 1 + %d appends queued behind it, want 2", got, n)
	}
	if got := l.LastSeq(); got != n+2 {
		t.Fatalf("LastSeq = %d, want %d", got, n+2)
	}
}

// TestSyncModes: SyncNever never fsyncs on its own; SyncEverySecond fsyncs
// in the background after appends have returned.
func TestSyncModes(t *testing.T) {
	var never atomic.Int64
	l := openLog(t, t.TempDir(), &Options{Sync: SyncNever, SegmentBytes: 4096, ObserveSync: func(time.Duration) { never.Add(1) }})
	appendN(t, l, 0, 10, 1)
	if n := never.Load(); n != 0 {
		t.Fatalf("SyncNever fsynced %d times", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := never.Load(); n != 1 {
		t.Fatalf("Close fsynced %d times, want 1", n)
	}

	var every atomic.Int64
	l = openLog(t, t.TempDir(), &Options{Sync: SyncEverySecond, SegmentBytes: 4096, ObserveSync: func(time.Duration) { every.Add(1) }})
	appendN(t, l, 0, 10, 1)
	waitFor(t, 5*time.Second, "the periodic fsync", func() bool { return every.Load() > 0 })
}
