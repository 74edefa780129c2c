// Package memtrim gives a quiet process's free heap back to the operating
// system.
//
// Go's collector lets the heap grow to its goal (twice the live heap under
// GOGC=100) between collections, and its scavenger returns only what lies
// above that goal. A cache that took a burst of writes therefore stays
// resident at up to twice its data for as long as it then stays idle: no
// allocation, no collection, nothing given back. A Trimmer watches the
// allocation rate; when the process has gone quiet and the heap holds
// enough that is not live (garbage not yet collected, or free and still
// mapped), it collects twice and returns every free page
// (debug.FreeOSMemory), as an allocator that decays its dirty pages does;
// the second collection is what drops sync.Pool caches (a snapshot's page
// buffers among them). It then lets go of the pages of the binary that the
// busy spell mapped (ReleaseCode): code that only a burst ran, such as
// the table's growth or a snapshot's, and the neighbouring pages the kernel
// maps with each one touched.
// Under steady load it does nothing: the collector's own pacing holds.
//
// Background work can keep a process that serves nobody from looking
// quiet: a snapshot that runs on after a burst of writes allocates as it
// goes (page buffers, nodes and values that live until its transaction
// commits), and Go's collector lets the heap grow to twice the live heap
// meanwhile. Given a Work hook, a Trimmer also counts a process as quiet
// while background work runs and nothing was served since the last look:
// such a process is collected at a quarter of its live heap of garbage
// rather than at all of it, spending on the collector CPU that no client
// wants. When background work that allocated more than a trim waits for
// ends, what it held is garbage that no collection may have seen, so the
// first quiet look after it trims whatever the last collection found live.
//
// ReleaseCode, once a server has started, lets go of the pages of its own
// binary that only starting touched.
package memtrim

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// every is how often a Trimmer looks at the allocation rate: a burst
	// of writes is given back within half a second of its end. A look
	// reads four runtime metrics, a few microseconds.
	every = time.Second / 4
	// quietBytes: the process is quiet when it allocated less than this
	// since the last look, a rate of 1 MiB a second (an idle node
	// allocates about 12 KiB a second).
	quietBytes = 1 << 20 / 4
	// minBytes is the heap not live (uncollected garbage plus free pages
	// still mapped) worth a collection, or a quarter of the live heap
	// when that is larger: a light but steady load then brings a
	// collection of a large heap at most once per quarter of it allocated.
	minBytes = 16 << 20
)

// Trimmer returns free heap memory to the operating system once the
// process is quiet. The zero value is ready to Run.
type Trimmer struct {
	// Logger receives a debug line per trim. Default: none.
	Logger *slog.Logger
	// Trimmed, when set, is called after each trim with the bytes the
	// heap (objects and free pages still mapped) shrank by.
	Trimmed func(returned uint64)
	// Work, when set, reports a count that moves with the work done for
	// clients (requests served, writes applied) and whether background
	// work that allocates on its own (a snapshot) is running: see the
	// package doc.
	Work func() (served uint64, background bool)

	// Seams for tests: read reads the heap (readHeap), free collects and
	// returns memory (collect), release lets go of the code pages
	// (ReleaseCode).
	read       func() heap
	free       func()
	release    func() (CodePages, error)
	lastAllocs uint64
	lastServed uint64 // Work's count at the last look
	lastBusy   bool   // background work ran at the last look
	busyAllocs uint64 // allocations when it was first seen running
	ended      bool   // background work that allocated enough ended since the last trim
	started    bool
}

// Run looks four times a second until ctx is done.
func (t *Trimmer) Run(ctx context.Context) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Tick()
		}
	}
}

// heap is what the runtime reports of the heap, in bytes.
type heap struct {
	allocs  uint64 // allocated since the process started
	objects uint64 // in objects: live, and garbage not yet swept
	free    uint64 // free and still mapped
	live    uint64 // marked live by the last collection
}

func readHeap() heap {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return heap{allocs: v(0), objects: v(1), free: v(2), live: v(3)}
}

// Tick looks once: it trims when the process allocated less than
// quietBytes since the last look or, with Work set, only background work
// ran since then, and enough of the heap is not live or background work
// that allocated as much ended since the last trim. It reports whether it trimmed. The first look
// only notes the allocations and the count.
func (t *Trimmer) Tick() bool {
	read, free, release := readHeap, collect, ReleaseCode
	if t.read != nil {
		read, free, release = t.read, t.free, t.release
	}
	h := read()
	var served uint64
	background := false
	if t.Work != nil {
		served, background = t.Work()
	}
	quiet := t.started && (h.allocs-t.lastAllocs < quietBytes ||
		background && served == t.lastServed)
	switch {
	case background && !t.lastBusy:
		t.busyAllocs = h.allocs
	case !background && t.lastBusy && h.allocs-t.busyAllocs >= max(minBytes, h.live/4):
		t.ended = true
	}
	t.started, t.lastAllocs, t.lastServed, t.lastBusy = true, h.allocs, served, background
	idle := h.objects + h.free - min(h.live, h.objects+h.free)
	if !quiet || idle < max(minBytes, h.live/4) && !t.ended {
		return false
	}
	t.ended = false
	start := time.Now()
	free()
	after := read()
	t.lastAllocs = after.allocs
	code, codeErr := release()
	before, now := h.objects+h.free, after.objects+after.free
	if t.Trimmed != nil {
		t.Trimmed(before - min(now, before))
	}
	if t.Logger != nil {
		args := []any{"heap_before", before, "heap_after", now, "live", after.live}
		if codeErr != nil {
			args = append(args, "code_err", codeErr)
		} else {
			args = append(args, "code_before", code.Before, "code_after", code.After)
		}
		t.Logger.Debug("memory returned to the system", append(args, "took_seconds", time.Since(start).Seconds())...)
	}
	return true
}

// collect drops the pools' caches (they survive one collection), then
// collects and returns the free pages.
func collect() {
	runtime.GC()
	debug.FreeOSMemory()
}

// CodePages is what the process has of its own executable's read-only
// mappings (code and read-only data) resident, in bytes, before and after
// ReleaseCode.
type CodePages struct {
	Before, After int64
}
