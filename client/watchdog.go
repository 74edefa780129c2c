package client

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog cancels an attempt when it makes no progress for its timeout.
// It runs while the attempt waits on the network (connecting, writing the
// request, waiting for the answer, reading the body) and is held while the
// attempt waits on the caller (reading the caller's upload source, or
// between the caller's Reads of a download), so a slow caller never counts
// as a stalled node, and a steady transfer of any length is never cut.
type watchdog struct {
	d     time.Duration
	timer *time.Timer // nil when d is 0
}

// newWatchdog starts a watchdog that cancels with ErrStalled after d
// without progress; d == 0 makes one that never fires.
func newWatchdog(d time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{d: d}
	if d > 0 {
		w.timer = time.AfterFunc(d, func() { cancel(stallError{d}) })
	}
	return w
}

// run (re)starts the countdown: the attempt now waits on the network.
func (w *watchdog) run() {
	if w.timer != nil {
		w.timer.Reset(w.d)
	}
}

// hold stops the countdown: the attempt now waits on the caller.
func (w *watchdog) hold() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// uploadBody is a request body read by the transport. Reading the caller's
// source holds the watchdog; the time between reads (the transport writing
// to the connection) runs it.
//
// It can be detached from the transport after an attempt fails: later
// reads fail without touching the source, so the source can be rewound for
// the next attempt while the failed attempt's transport goroutine may still
// hold the body.
type uploadBody struct {
	src      io.Reader
	wd       *watchdog
	mu       sync.Mutex // held while reading src
	detached atomic.Bool
	started  atomic.Bool // a Read reached (or may have reached) src
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.started.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached.Load() {
		return 0, errDetached
	}
	b.wd.hold()
	n, err := b.src.Read(p)
	if !b.detached.Load() { // an attempt that is over has no watchdog to run
		b.wd.run()
	}
	return n, err
}

// detach makes later reads fail and waits for a read in progress; it
// reports whether any read may have reached the source.
func (b *uploadBody) detach() (touched bool) {
	b.detached.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started.Load()
}

// detachNow makes later reads fail without waiting for a read in
// progress (the source may be a terminal or a pipe that never ends); it
// reports whether any read may have reached the source.
func (b *uploadBody) detachNow() (touched bool) {
	b.detached.Store(true)
	return b.started.Load()
}

// errDetached fails reads of a body whose attempt is over.
var errDetached = detachedError{}

type detachedError struct{}

func (detachedError) Error() string { return "client: request body read after its attempt ended" }

// downloadBody is an answer's body. The watchdog runs only inside Read;
// Close ends the attempt.
type downloadBody struct {
	rc     io.ReadCloser
	wd     *watchdog
	ctx    context.Context // the attempt's
	cancel context.CancelCauseFunc
}

func (b *downloadBody) Read(p []byte) (int, error) {
	b.wd.run()
	n, err := b.rc.Read(p)
	b.wd.hold()
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); cause != nil {
			err = attemptError(b.ctx, err)
		}
	}
	return n, err
}

func (b *downloadBody) Close() error {
	b.wd.hold()
	err := b.rc.Close()
	b.cancel(context.Canceled)
	return err
}

// stallError is ErrStalled with the timeout that ran out.
type stallError struct{ d time.Duration }

func (e stallError) Error() string {
	return "no byte moved for " + e.d.String() + " (the client's timeout)"
}

func (e stallError) Is(target error) bool { return target == ErrStalled }
