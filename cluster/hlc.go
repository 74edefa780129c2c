package cluster

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/disperse/disperse/engine"
)

// counterBits is the width of the logical counter in a clock reading.
const counterBits = 16

// Clock is a hybrid logical clock. A reading is the Unix time in
// milliseconds shifted left by 16 bits, plus a 16-bit logical counter. The
// readings one Clock hands out strictly increase, even when the wall clock
// steps back or many goroutines read it at once; after Observe(r) every
// reading is greater than r. When the counter overflows within one
// millisecond the reading runs ahead of the wall clock until it catches up.
//
// The clock is bounded: Admit refuses a reading more than the maximum skew
// ahead of the wall clock, and Seed never moves the clock further than
// that, so one peer with a wrong clock (or a hostile one sending
// math.MaxUint64) can neither freeze keys nor make the clock wrap.
type Clock struct {
	last atomic.Uint64
	node uint64
	now  func() time.Time
	skew uint64 // the maximum skew as a clock difference
}

// NewClock returns a clock that stamps versions with node id node. now is
// the wall clock (nil: time.Now); maxSkew bounds how far ahead of it a
// reading may be observed (0: not at all).
func NewClock(node uint64, now func() time.Time, maxSkew time.Duration) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{node: node, now: now, skew: uint64(max(maxSkew, 0).Milliseconds()) << counterBits}
}

// Node is the id this clock stamps into versions.
func (c *Clock) Node() uint64 { return c.node }

// Wall is the current physical time as a clock reading with counter 0.
func (c *Clock) Wall() uint64 {
	ms := c.now().UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return uint64(ms) << counterBits
}

// limit is the largest reading Admit accepts now.
func (c *Clock) limit() uint64 {
	w := c.Wall()
	if w > math.MaxUint64-c.skew {
		return math.MaxUint64
	}
	return w + c.skew
}

// Now returns a reading for a local event: greater than every reading
// returned or observed before.
func (c *Clock) Now() uint64 {
	w := c.Wall()
	for {
		old := c.last.Load()
		next := old + 1
		if w > old {
			next = w
		}
		if c.last.CompareAndSwap(old, next) {
			return next
		}
	}
}

// Version returns a new version for a local write.
func (c *Clock) Version() engine.Version {
	return engine.Version{Time: c.Now(), Node: c.node}
}

// After returns a version for a local write of a key whose newest version
// is head: newer than head and than every reading before. ok is false only
// when head is the largest version there is.
func (c *Clock) After(head engine.Version) (v engine.Version, ok bool) {
	v = c.Version()
	if v.Compare(head) > 0 {
		return v, true
	}
	// head is ahead of this clock (it came from a peer within the skew, or
	// from before a step back of the wall clock): go just past it, and
	// move the clock along when that stays within the bound.
	if head.Time == math.MaxUint64 {
		return engine.Version{}, false
	}
	v.Time = head.Time + 1
	if v.Time <= c.limit() {
		c.Observe(v.Time)
	}
	return v, true
}

// Admit observes a reading received from a peer and reports whether it is
// within the skew bound; a reading beyond it is not observed.
func (c *Clock) Admit(remote uint64) bool {
	if remote > c.limit() {
		return false
	}
	c.Observe(remote)
	return true
}

// Seed moves the clock past r, the largest version a node holds at start,
// but no further than the skew bound allows.
func (c *Clock) Seed(r uint64) {
	c.Observe(min(r, c.limit()))
}

// Observe moves the clock past a reading. Callers outside this file use
// Admit or Seed, which bound it.
func (c *Clock) Observe(remote uint64) {
	for {
		old := c.last.Load()
		if remote <= old || c.last.CompareAndSwap(old, remote) {
			return
		}
	}
}

// Ahead is how far a reading is ahead of the wall clock (negative: behind).
func (c *Clock) Ahead(r uint64) time.Duration {
	return time.Duration(int64(r>>counterBits)-c.now().UnixMilli()) * time.Millisecond
}
