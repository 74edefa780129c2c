package cluster

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
)

// fakeWall is a settable wall clock.
type fakeWall struct{ ms atomic.Int64 }

func (f *fakeWall) now() time.Time { return time.UnixMilli(f.ms.Load()) }

func TestClockLayout(t *testing.T) {
	w := &fakeWall{}
	w.ms.Store(1_700_000_000_000)
	c := NewClock(7, w.now, time.Minute)
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
	if v := c.Version(); v.Node != 7 {
		t.Fatalf("version node %x: want the clock's node id 7", v.Node)
	}
}

func TestClockMonotonicWhenWallStepsBack(t *testing.T) {
	w := &fakeWall{}
	w.ms.Store(1_000_000)
	c := NewClock(7, w.now, time.Minute)
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
	c := NewClock(7, w.now, time.Minute)
	remote := uint64(1_030_000)<<counterBits | 42
	if !c.Admit(remote) {
		t.Fatal("a reading 30s ahead was refused with a 1m bound")
	}
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
	c := NewClock(7, nil, time.Minute)
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

func TestClockBounds(t *testing.T) {
	w := &fakeWall{}
	w.ms.Store(1_000_000)
	c := NewClock(7, w.now, time.Minute)
	if c.Admit(uint64(1_000_000+61_000) << counterBits) {
		t.Fatal("a reading 61s ahead was admitted with a 1m bound")
	}
	if c.Admit(math.MaxUint64) {
		t.Fatal("the largest reading was admitted")
	}
	if r := c.Now(); r>>counterBits != 1_000_000 {
		t.Fatalf("refused readings moved the clock to %x", r)
	}
	c.Seed(math.MaxUint64) // a store holding a version from far ahead
	if r := c.Now(); r>>counterBits > 1_060_000 {
		t.Fatalf("seeding moved the clock beyond the bound: %d ms", r>>counterBits)
	}
	// A key whose head is far ahead still gets a version above it, without
	// pulling the clock along.
	head := engine.Version{Time: uint64(5_000_000) << counterBits, Node: 3}
	v, ok := c.After(head)
	if !ok || v.Compare(head) <= 0 {
		t.Fatalf("After(%v) = %v %v", head, v, ok)
	}
	if r := c.Now(); r>>counterBits > 1_060_000 {
		t.Fatalf("After moved the clock beyond the bound: %d ms", r>>counterBits)
	}
	if _, ok := c.After(engine.Version{Time: math.MaxUint64}); ok {
		t.Fatal("a version above the largest one was handed out")
	}
}
