//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// applyTimerSlack makes d the timer slack of every thread of the process:
// how late the kernel may fire a thread's timers so that it can fire
// several with one wake-up.
//
// It matters for the Go runtime's monitor thread. While any thread sits in
// a system call (the log's fdatasync under --fsync always, above all) the
// monitor polls every 20 µs, and on a virtual machine each of those
// sleeps and wake-ups costs several microseconds of CPU: about a tenth of
// a node's CPU under durable writes. With a slack of 1 ms instead of the
// default 50 µs it wakes some fifteen times less often, and a fsync
// shorter than that ends before the monitor hands its processor to
// another thread.
//
// A thread sets its own slack (prctl), threads take their creator's, and
// execve keeps it; the monitor thread starts before main. So applyTimerSlack
// sets the slack on this thread and executes its binary again with the same
// arguments and environment (the process keeps its id), and the new image
// starts every thread with it. It returns nil without doing anything when
// d is 0 or is the slack already; otherwise it returns only on failure,
// with the node to run on at the system's slack.
func applyTimerSlack(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	runtime.LockOSThread() // prctl and execve act on this thread
	defer runtime.UnlockOSThread()
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("read the timer slack: %w", err)
	}
	if int64(cur) == d.Nanoseconds() {
		return nil
	}
	// The process's own executable file, even when its path has since been
	// given to another file (an upgrade in place) or removed; the path
	// where /proc is not mounted.
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find the binary to run again: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0); err != nil {
		return fmt.Errorf("set the timer slack: %w", err)
	}
	err = syscall.Exec(exe, os.Args, os.Environ())
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(cur), 0, 0, 0)
	return fmt.Errorf("run %s again with the timer slack: %w", exe, err)
}
