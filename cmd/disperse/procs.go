package main

import (
	"runtime"
	"strconv"

	"github.com/disperse/disperse/wal"
)

// applyProcs gives a node whose log fsyncs every commit one processor
// (GOMAXPROCS) more than the runtime's default. It leaves the default alone
// under the other fsync modes, and in every mode when env, the GOMAXPROCS
// environment variable, sets it (a positive number, as the runtime reads it).
//
// Under --fsync always the log's writer spends most of its time blocked in
// fdatasync, and its thread keeps its processor until the runtime's monitor
// takes it back, which it does only after its next wake-up: up to a
// millisecond with the node's timer slack. Until then, on a machine of two
// CPUs, the request handlers share one processor while the other CPU idles.
// The spare processor lets them use every CPU while a flush is under way:
// on two CPUs with a write-back disk cache, PUT over HTTP with --fsync
// always went from 0.76-0.81 of --fsync never to 0.78-0.87, in pairs run
// side by side (BENCHMARKS.md). When no flush is under way, one more
// thread than CPUs may run Go code; the kernel shares the CPUs between
// them.
//
// Setting GOMAXPROCS stops the runtime from following a change of the
// container's CPU limit while the node runs; the limit at start counts.
func applyProcs(mode wal.SyncMode, env string) {
	if n, err := strconv.Atoi(env); err == nil && n > 0 {
		return
	}
	if mode == wal.SyncAlways {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
}
