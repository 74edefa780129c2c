package memtrim

import (
	"runtime"
	"testing"
)

// fakeRuntime is a heap the test moves by hand; free collects it: every
// byte not live is given back.
type fakeRuntime struct {
	h     heap
	trims int
	// releases counts the code releases; a release that follows no
	// collection is counted in early.
	releases, early int
	// garbage, when set, is what a collection finds dead of what the last
	// one counted live.
	garbage uint64
}

func (f *fakeRuntime) trimmer() *Trimmer {
	return &Trimmer{read: func() heap { return f.h }, free: func() {
		f.trims++
		f.h.live -= f.garbage
		f.garbage = 0
		f.h.objects, f.h.free = f.h.live, 0
	}, release: func() (CodePages, error) {
		if f.releases++; f.releases > f.trims {
			f.early++
		}
		return CodePages{}, nil
	}}
}

const mib = 1 << 20

func TestTickTrimsOnceQuiet(t *testing.T) {
	f := &fakeRuntime{h: heap{allocs: 500 * mib, objects: 300 * mib, free: 40 * mib, live: 100 * mib}}
	tr := f.trimmer()
	var returned []uint64
	tr.Trimmed = func(n uint64) { returned = append(returned, n) }
	if tr.Tick() {
		t.Fatal("the first look trimmed: it has no rate to judge by")
	}
	f.h.allocs += quietBytes // busy: as much as the quiet bound
	if tr.Tick() {
		t.Fatal("trimmed while the process allocates")
	}
	f.h.allocs += quietBytes / 2 // quiet
	if !tr.Tick() || f.trims != 1 {
		t.Fatalf("did not trim a quiet process holding 240 MiB that is not live (trims %d)", f.trims)
	}
	if f.h.objects != 100*mib {
		t.Fatalf("heap %d after the trim", f.h.objects)
	}
	if len(returned) != 1 || returned[0] != 240*mib {
		t.Fatalf("Trimmed called with %v, want once with 240 MiB", returned)
	}
	if f.releases != 1 || f.early != 0 {
		t.Fatalf("code released %d times (%d before a collection) for one trim", f.releases, f.early)
	}
	// Quiet, and nothing left to give back: no second collection.
	f.h.allocs += quietBytes / 2
	if tr.Tick() || f.trims != 1 || len(returned) != 1 || f.releases != 1 {
		t.Fatalf("trimmed a heap with nothing to give back (trims %d, reported %d, code released %d times)", f.trims, len(returned), f.releases)
	}
}

// A process that serves nobody while background work allocates (a
// snapshot running on after a burst) is trimmed each time a quarter of
// its live heap has turned to garbage; one that serves, or allocates
// without background work, is left to the collector.
func TestTickTrimsWhileOnlyBackgroundWorkAllocates(t *testing.T) {
	f := &fakeRuntime{h: heap{allocs: 500 * mib, objects: 300 * mib, free: 40 * mib, live: 100 * mib}}
	tr := f.trimmer()
	var served uint64
	background := true
	tr.Work = func() (uint64, bool) { return served, background }
	busy := func() { // allocates 8 MiB and leaves as much garbage
		f.h.allocs += 8 * mib
		f.h.objects += 8 * mib
	}
	tr.Tick()
	served += 10
	busy()
	if tr.Tick() {
		t.Fatal("trimmed while the process serves and allocates")
	}
	busy()
	if !tr.Tick() || f.trims != 1 {
		t.Fatalf("did not trim a process that serves nobody, holding 256 MiB not live (trims %d)", f.trims)
	}
	for i := 1; i <= 4; i++ { // 32 MiB of background garbage: more than a quarter of 100
		busy()
		if trimmed := tr.Tick(); trimmed != (i == 4) {
			t.Fatalf("look %d with %d MiB not live: trimmed %v", i, 8*i, trimmed)
		}
	}
	if f.trims != 2 {
		t.Fatalf("trims %d, want 2", f.trims)
	}
	for range 10 {
		served++
		busy()
		if tr.Tick() {
			t.Fatalf("trimmed while the process serves and allocates (trims %d)", f.trims)
		}
	}
	background = false // allocating, serving nobody, no background work: not quiet
	for range 10 {
		busy()
		if tr.Tick() {
			t.Fatalf("trimmed while the process allocates without background work (trims %d)", f.trims)
		}
	}
}

// When background work that allocated more than a trim waits for ends,
// the first quiet look trims even though the last collection, made while
// the work held its memory, found the heap live: what the work held is
// garbage no collection has seen.
func TestTickTrimsWhenBackgroundWorkEnds(t *testing.T) {
	f := &fakeRuntime{h: heap{allocs: 500 * mib, objects: 160 * mib, live: 160 * mib}}
	tr := f.trimmer()
	var served uint64
	background := true
	tr.Work = func() (uint64, bool) { return served, background }
	tr.Tick()
	f.h.allocs += 32 * mib
	if tr.Tick() {
		t.Fatal("trimmed a heap the last collection found all live")
	}
	background = false
	f.h.allocs += 8 * mib // the work's last allocations (40 MiB in all): not yet quiet
	if tr.Tick() {
		t.Fatal("trimmed while the process allocated")
	}
	f.garbage = 60 * mib // what the work held
	if !tr.Tick() || f.trims != 1 || f.h.objects != 100*mib {
		t.Fatalf("no trim on the first quiet look after the background work ended (trims %d)", f.trims)
	}
	f.h.objects += 8 * mib
	if tr.Tick() {
		t.Fatal("trimmed again with nothing to give back")
	}
	// Background work that allocated less than a trim waits for: no trim
	// at its end.
	background = true
	tr.Tick()
	f.h.allocs += 8 * mib
	tr.Tick()
	background = false
	tr.Tick()
	if tr.Tick() || f.trims != 1 {
		t.Fatalf("trimmed after background work that allocated 8 MiB (trims %d)", f.trims)
	}
	// Under load when the work ends: one trim once the load stops.
	background = true
	tr.Tick()
	f.h.allocs += 32 * mib
	background = false
	for range 5 {
		served++
		f.h.allocs += 8 * mib
		if tr.Tick() {
			t.Fatalf("trimmed a process under load (trims %d)", f.trims)
		}
	}
	if !tr.Tick() || f.trims != 2 {
		t.Fatalf("no trim once the load stopped after the background work ended (trims %d)", f.trims)
	}
}

func TestTickWeighsWhatIsNotLive(t *testing.T) {
	for _, c := range []struct {
		name string
		h    heap
		want bool
	}{
		{"below the minimum", heap{objects: 20 * mib, free: 5 * mib, live: 10 * mib}, false},
		{"at the minimum", heap{objects: 20 * mib, free: 6 * mib, live: 10 * mib}, true},
		// A quarter of a 1 GiB live heap is 256 MiB.
		{"below a quarter of a large heap", heap{objects: 1200 * mib, free: 70 * mib, live: 1024 * mib}, false},
		{"at a quarter of a large heap", heap{objects: 1200 * mib, free: 80 * mib, live: 1024 * mib}, true},
		// Live above what the heap holds (read between a collection and
		// its sweep): nothing to give back, and no underflow.
		{"live above the heap", heap{objects: 10 * mib, live: 50 * mib}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRuntime{h: c.h}
			tr := f.trimmer()
			tr.Tick()
			if got := tr.Tick(); got != c.want {
				t.Fatalf("trimmed %v, want %v", got, c.want)
			}
		})
	}
}

// TestReadHeap: the runtime metrics read are the ones this Go has.
func TestReadHeap(t *testing.T) {
	runtime.GC() // live is what the last collection marked
	h := readHeap()
	if h.allocs == 0 || h.objects == 0 || h.live == 0 {
		t.Fatalf("runtime metrics missing: %+v", h)
	}
}
