package engine

import (
	"runtime/debug"
	"sync"
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
	n     int  // recoveries under way
	saved int  // the setting to restore when the last one ends
	trim  bool // one of them built an index worth trimming after
}

// trimIndexAbove is the index, as the accounting charges it, from which a
// recovery's garbage is worth a collection once it ends.
const trimIndexAbove = 32 << 20

// raiseGCPercent raises GOGC to recoveryGCPercent, unless it is already
// higher or off, until the returned function is called. Engines opening
// at the same time share the raise; the last one to finish restores.
//
// Under the raised GOGC the heap may grow to several times the index, and
// with no allocation to come the collector would keep that garbage mapped
// for minutes (the runtime gives back only what is above its goal). So
// when a recovery that built an index of trimIndexAbove or more was among
// them (restore's trim), the last one collects once and returns the free
// pages to the operating system.
func raiseGCPercent() (restore func(trim bool)) {
	gcRaise.Lock()
	defer gcRaise.Unlock()
	if gcRaise.n == 0 {
		gcRaise.saved = debug.SetGCPercent(recoveryGCPercent)
		if gcRaise.saved < 0 || gcRaise.saved >= recoveryGCPercent {
			debug.SetGCPercent(gcRaise.saved)
		}
	}
	gcRaise.n++
	return func(trim bool) {
		gcRaise.Lock()
		defer gcRaise.Unlock()
		gcRaise.trim = gcRaise.trim || trim
		if gcRaise.n--; gcRaise.n == 0 {
			debug.SetGCPercent(gcRaise.saved)
			if gcRaise.trim {
				debug.FreeOSMemory()
			}
			gcRaise.trim = false
		}
	}
}
