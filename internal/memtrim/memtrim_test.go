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
}

func (f *fakeRuntime) trimmer() *Trimmer {
	return &Trimmer{read: func() heap { return f.h }, free: func() {
		f.trims++
		f.h.objects, f.h.free = f.h.live, 0
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
	// Quiet, and nothing left to give back: no second collection.
	f.h.allocs += quietBytes / 2
	if tr.Tick() || f.trims != 1 || len(returned) != 1 {
		t.Fatalf("trimmed a heap with nothing to give back (trims %d, reported %d)", f.trims, len(returned))
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
