package blob

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// A watch cuts one shard transfer with another node when no byte has moved
// for its idle limit while this node waits on that node. Only waiting
// counts: a call blocked on the other node (sending a request and waiting
// for its answer, reading a response body) enters the watch for its
// duration, and a request body being read by the transport leaves it,
// since the transport then waits on this node. So a transfer may last as
// long as its shard takes to stream, and may pause while the blob's own
// uploader or downloader is slow, but a holder that hangs is given up on.
//
// Cutting cancels the transfer's context: the transport closes the
// connection and the blocked call returns; the watch then turns its error
// into ErrStalled.
//
// One timer serves the whole transfer and is armed lazily: progress only
// notes the time, and the timer, when it fires before the limit has
// passed since the last progress, re-arms itself for the rest. It is not
// re-armed while nothing waits.
type watch struct {
	what   string // the request, for the error
	idle   time.Duration
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	timer   *time.Timer
	armed   bool      // timer is pending
	waiting int       // calls blocked on the other node
	since   time.Time // last progress, or start of the current wait
	stalled error     // set when the watch cut the transfer
	stopped bool
}

// startWatch returns the context to send one transfer, what, under and its
// watch. The caller must call stop once the transfer is over.
func startWatch(ctx context.Context, what string, idle time.Duration) (context.Context, *watch) {
	ctx, cancel := context.WithCancelCause(ctx)
	return ctx, &watch{what: what, idle: idle, cancel: cancel}
}

// enter notes that a call starts waiting on the other node.
func (w *watch) enter() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting++
	if w.waiting != 1 || w.stopped {
		return
	}
	w.since = time.Now()
	if w.armed {
		return
	}
	w.armed = true
	if w.timer == nil {
		w.timer = time.AfterFunc(w.idle, w.fire)
	} else {
		w.timer.Reset(w.idle)
	}
}

// leave notes that a call has stopped waiting, having made progress.
func (w *watch) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting--
	w.since = time.Now()
}

func (w *watch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.stopped || w.waiting <= 0 {
		return
	}
	if left := w.idle - time.Since(w.since); left > 0 {
		w.armed = true
		w.timer.Reset(left)
		return
	}
	w.stalled = fmt.Errorf("%w: %w: %s: no byte moved for %v", ErrUnavailable, ErrStalled, w.what, w.idle)
	w.cancel(w.stalled)
}

// stop ends the transfer: the timer is stopped and the context released
// (cancelled, so a transfer still under way is cut).
func (w *watch) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.cancel(nil)
}

// stall returns the error of the cut when the watch cut the transfer
// (wrapping ErrStalled and ErrUnavailable), else nil.
func (w *watch) stall() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stalled
}

// watchedBody is a response body whose reads wait on the other node; Close
// ends the transfer.
type watchedBody struct {
	rc io.ReadCloser
	w  *watch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.enter()
	n, err := b.rc.Read(p)
	b.w.leave()
	if err != nil && err != io.EOF {
		if serr := b.w.stall(); serr != nil {
			err = serr
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}

// watchedSource is a request body, read by the transport while the round
// trip waits. The transport reads it only when it can send more, so while
// a read is under way the transport waits on this node, not on the other
// one, and the watch does not count.
type watchedSource struct {
	r io.Reader
	w *watch
}

func (s *watchedSource) Read(p []byte) (int, error) {
	s.w.leave()
	n, err := s.r.Read(p)
	s.w.enter()
	return n, err
}

// Close closes the source if it is a Closer, as the transport would have.
func (s *watchedSource) Close() error {
	if c, ok := s.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
