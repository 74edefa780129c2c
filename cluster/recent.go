package cluster

import (
	"sync"
	"time"
	"unsafe"

	"github.com/disperse/disperse/engine"
)

// recentWindow is how long the replicator keeps this node's own writes for
// peers that turn alive. Two nodes see each other turn alive at different
// moments, a gossip round or a few apart; a write taken in between reaches
// neither the replication queue (the peer is not yet alive here) nor the
// peer's join-time sync (it compared the trees before the write). The
// window covers that gap with room to spare.
const recentWindow = 10 * time.Second

// recentEpoch is what the ring measures its times from: durations from it
// follow the monotonic clock, so a wall clock that steps keeps no write
// too long and drops none too early.
var recentEpoch = time.Now()

// recentAt is now as the ring records it.
func recentAt(now time.Time) int64 { return int64(now.Sub(recentEpoch)) }

// recentWrite is one of this node's writes, by key and version, and when
// it was taken. The value is not kept: a write still worth sending is
// still the newest of its key, and the store has it.
type recentWrite struct {
	at      int64 // recentAt of when it was taken
	key     string
	ver     engine.Version
	exp     int64 // ExpiresAt
	deleted bool
}

// recentCost is what the ring charges a write beyond its key's bytes.
const recentCost = int(unsafe.Sizeof(recentWrite{}))

func (w *recentWrite) cost() int { return recentCost + len(w.key) }

// recentBlock is how many writes one block of the ring holds (28 KiB):
// the ring grows and shrinks a block at a time, so its memory follows what
// it holds, with no array doubling and nothing kept past the window.
const recentBlock = 512

// recentRing keeps this node's own replicated writes of the last
// recentWindow, within max bytes (recentWrite.cost of what it holds), in
// blocks of recentBlock writes, oldest first. Its lock only guards its
// fields; the replicator's lock orders writes against starting a peer, so
// that every write is either in the ring when a peer starts or queued for
// it.
type recentRing struct {
	max int // Config.RecentBytes

	mu     sync.Mutex
	blocks [][]recentWrite // each of capacity recentBlock
	head   int             // blocks[0][head:] and the later blocks are held
	bytes  int
	// lost is when the newest write dropped for room was taken (recentAt;
	// meaningful once dropped); while it is within the window, the ring is
	// not the whole story.
	lost    int64
	dropped bool
}

// add records e, taken at now, and forgets what left the window or no
// longer fits.
func (r *recentRing) add(now time.Time, e *engine.Entry) {
	w := recentWrite{at: recentAt(now), key: e.Key, ver: e.Version, exp: e.ExpiresAt, deleted: e.Deleted}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.blocks); n == 0 || len(r.blocks[n-1]) == recentBlock {
		r.blocks = append(r.blocks, make([]recentWrite, 0, recentBlock))
	}
	last := &r.blocks[len(r.blocks)-1]
	*last = append(*last, w)
	r.bytes += w.cost()
	r.drop(now)
}

// expire forgets the writes that left the window by now, and the ring's
// last block once it holds none: a node that stopped taking writes keeps
// nothing. Called every second.
func (r *recentRing) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop(now)
	if len(r.blocks) == 1 && r.head == len(r.blocks[0]) {
		r.blocks, r.head = nil, 0
	}
}

// drop forgets, oldest first, what left the window or no longer fits, and
// every block it has passed.
func (r *recentRing) drop(now time.Time) {
	cut := recentAt(now.Add(-recentWindow))
	for len(r.blocks) > 0 && r.head < len(r.blocks[0]) {
		old := &r.blocks[0][r.head]
		expired := old.at < cut
		if !expired && r.bytes <= r.max {
			break
		}
		if !expired {
			r.lost, r.dropped = old.at, true
		}
		r.bytes -= old.cost()
		*old = recentWrite{}
		if r.head++; r.head == recentBlock {
			r.blocks[0] = nil
			r.blocks, r.head = r.blocks[1:], 0
		}
	}
}

// since returns the writes taken within the window before now, oldest
// first, and whether they are all this node took in that time.
func (r *recentRing) since(now time.Time) ([]recentWrite, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cut := recentAt(now.Add(-recentWindow))
	var out []recentWrite
	for i, b := range r.blocks {
		if i == 0 {
			b = b[r.head:]
		}
		for _, w := range b {
			if w.at > cut {
				out = append(out, w)
			}
		}
	}
	return out, !r.dropped || r.lost <= cut
}
