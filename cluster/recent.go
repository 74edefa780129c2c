package cluster

import (
	"sync"
	"time"

	"github.com/disperse/disperse/engine"
)

// recentWindow is how long the replicator keeps this node's own writes for
// peers that turn alive. Two nodes see each other turn alive at different
// moments, a gossip round or a few apart; a write taken in between reaches
// neither the replication queue (the peer is not yet alive here) nor the
// peer's join-time sync (it compared the trees before the write). The
// window covers that gap with room to spare.
const recentWindow = 10 * time.Second

// recentWrite is one of this node's writes and when it was taken.
type recentWrite struct {
	at time.Time
	e  engine.Entry
}

// recentRing keeps this node's own replicated writes of the last
// recentWindow, within max bytes (entrySize of what it holds). Its lock
// only guards its fields; the replicator's lock orders writes against
// starting a peer, so that every write is either in the ring when a peer
// starts or queued for it.
type recentRing struct {
	max int // Config.RecentBytes

	mu    sync.Mutex
	ents  []recentWrite
	head  int // ents[head:] are held
	bytes int
	// lost is the newest write dropped for room; while it is within the
	// window, the ring is not the whole story.
	lost time.Time
}

// add records e, taken at now, and forgets what left the window or no
// longer fits.
func (r *recentRing) add(now time.Time, e engine.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ents = append(r.ents, recentWrite{at: now, e: e})
	r.bytes += entrySize(&e)
	r.drop(now)
	if r.head > len(r.ents)/2 && r.head > 64 {
		k := copy(r.ents, r.ents[r.head:])
		clear(r.ents[k:])
		r.ents, r.head = r.ents[:k], 0
	}
}

// expire forgets the writes that left the window by now, and the ring's
// array once it holds none: a node that stopped taking writes keeps
// nothing. Called every second.
func (r *recentRing) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop(now)
	if r.head == len(r.ents) {
		r.ents, r.head = nil, 0
	}
}

// drop forgets, oldest first, what left the window or no longer fits.
func (r *recentRing) drop(now time.Time) {
	for r.head < len(r.ents) {
		old := &r.ents[r.head]
		expired := now.Sub(old.at) > recentWindow
		if !expired && r.bytes <= r.max {
			break
		}
		if !expired {
			r.lost = old.at
		}
		r.bytes -= entrySize(&old.e)
		*old = recentWrite{}
		r.head++
	}
}

// since returns the writes taken within the window before now, oldest
// first, and whether they are all this node took in that time.
func (r *recentRing) since(now time.Time) ([]engine.Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cut := now.Add(-recentWindow)
	var out []engine.Entry
	for _, w := range r.ents[r.head:] {
		if w.at.After(cut) {
			out = append(out, w.e)
		}
	}
	return out, !r.lost.After(cut)
}
