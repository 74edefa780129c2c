package engine

import (
	"runtime/debug"
	"sync"

	"github.com/disperse/disperse/internal/memtrim"
)

// recoveryGCPercent is the collector's GOGC while an engine recovers.
// Recovery builds the whole index at once, and nearly everything it
// allocates stays live: under the default of 100 the collector would mark
// the growing index again each time the heap doubles. At 400 it marks it
// about half as often, for little more memory, since there is little
// garbage to let pile up. A memory limit (GOMEMLIMIT) still holds.
const recoveryGCPercent = 400

var gcRaise struct {
	sync.Mutex
	n     int // recoveries under way
	saved int // the setting to restore when the last one ends
}

// raiseGCPercent raises GOGC to recoveryGCPercent, unless it is already
// higher or off, until the returned function is called. Engines opening
// at the same time share the raise; the last one to finish restores.
func raiseGCPercent() (restore func()) {
	gcRaise.Lock()
	defer gcRaise.Unlock()
	if gcRaise.n == 0 {
		gcRaise.saved = debug.SetGCPercent(recoveryGCPercent)
		if gcRaise.saved < 0 || gcRaise.saved >= recoveryGCPercent {
			debug.SetGCPercent(gcRaise.saved)
		}
	}
	gcRaise.n++
	return func() {
		gcRaise.Lock()
		defer gcRaise.Unlock()
		if gcRaise.n--; gcRaise.n == 0 {
			debug.SetGCPercent(gcRaise.saved)
			trimHeap()
		}
	}
}

// trimHeapAbove is the heap, in use or free but not yet given back, above
// which the end of a recovery collects and returns what is free to the
// operating system.
const trimHeapAbove = 64 << 20

// trimHeap returns the garbage a recovery left to the operating system,
// once: under the raised GOGC the heap may have grown to several times
// the index, and with no allocation to come the collector would keep it,
// free, for minutes (the runtime gives back only what is above its goal).
func trimHeap() {
	if memtrim.HeapBytes() >= trimHeapAbove {
		debug.FreeOSMemory()
	}
}
