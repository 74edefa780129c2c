package cluster

import (
	"hash/fnv"
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
type Clock struct {
	last atomic.Uint64
	node uint64
	now  func() time.Time
}

// NewClock returns a clock that stamps versions with the id of the node
// called name. now is the wall clock (nil: time.Now).
func NewClock(name string, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{node: NodeID(name), now: now}
}

// NodeID is the 64-bit FNV-1a hash of a node name: the tie-break of
// versions written by that node.
func NodeID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// Node is the id this clock stamps into versions.
func (c *Clock) Node() uint64 { return c.node }

// wall is the current physical time as a clock reading with counter 0.
func (c *Clock) wall() uint64 {
	ms := c.now().UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return uint64(ms) << counterBits
}

// Now returns a reading for a local event: greater than every reading
// returned or observed before.
func (c *Clock) Now() uint64 {
	w := c.wall()
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

// Observe moves the clock past a reading received from a peer.
func (c *Clock) Observe(remote uint64) {
	for {
		old := c.last.Load()
		if remote <= old || c.last.CompareAndSwap(old, remote) {
			return
		}
	}
}
