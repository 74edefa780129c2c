package cluster

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWall is a settable wall clock.
type fakeWall struct{ ms atomic.Int64 }

func (f *fakeWall) now() time.Time { return time.UnixMilli(f.ms.Load()) }

func TestClockLayout(t *testing.T) {
	w := &fakeWall{}
	w.ms.Store(1_700_000_000_000)
	c := NewClock("a", w.now)
	r := c.Now()
	if r>>counterBits != 1_700_000_000_000 || r&0xffff != 0 {
		t.Fatalf("first reading %x: want wall ms << 16 with counter 0", r)
	}
	if r2 := c.Now(); r2 != r+1 {
		t.Fatalf("second reading in the same ms = %x, want %x", r2, r+1)
	}
	w.ms.Add(5)
	if r3 := c.Now(); r3 != (1_700_000_000_005 << counterBits) {
		t.Fatalf("reading after the wall clock moved = %x, want counter reset", r3)
	}
	if v := c.Version(); v.Node != NodeID("a") || v.Node == NodeID("b") {
		t.Fatalf("version node %x: want NodeID(a), distinct from NodeID(b)", v.Node)
	}
}

func TestClockMonotonicWhenWallStepsBack(t *testing.T) {
	w := &fakeWall{}
	w.ms.Store(1_000_000)
	c := NewClock("a", w.now)
	prev := c.Now()
	for _, step := range []int64{-10, 0, -1000, 3, -1} {
		w.ms.Add(step)
		r := c.Now()
		if r <= prev {
			t.Fatalf("reading %x not after %x when the wall clock moved by %d ms", r, prev, step)
		}
		prev = r
	}
}

func TestClockObserve(t *testing.T) {
	w := &fakeWall{}
	w.ms.Store(1_000_000)
	c := NewClock("a", w.now)
	remote := uint64(2_000_000)<<counterBits | 42
	c.Observe(remote)
	if r := c.Now(); r <= remote {
		t.Fatalf("reading %x after observing %x", r, remote)
	}
	before := c.Now()
	c.Observe(5) // an old reading changes nothing
	if r := c.Now(); r != before+1 {
		t.Fatalf("observing an old reading moved the clock: %x after %x", r, before)
	}
}

func TestClockConcurrentReadingsAreUnique(t *testing.T) {
	c := NewClock("a", nil)
	const goroutines, each = 8, 5000
	out := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if i%100 == 0 {
					c.Observe(c.Now() + 3)
				}
				out[g] = append(out[g], c.Now())
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, rs := range out {
		for i, r := range rs {
			if i > 0 && r <= rs[i-1] {
				t.Fatalf("readings of one goroutine went back: %x after %x", r, rs[i-1])
			}
			if seen[r] {
				t.Fatalf("reading %x handed out twice", r)
			}
			seen[r] = true
		}
	}
}
