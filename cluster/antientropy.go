package cluster

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/disperse/disperse/engine"
)

// localState is this node's push/pull state: its name and its digests.
func (n *Node) localState() []byte {
	return encodeState(n.cfg.Name, n.eng.Digests())
}

// mergeState compares a peer's digests with this node's and, for the
// buckets that differ, sends this node's entries to the peer and asks the
// peer for its own.
func (n *Node) mergeState(buf []byte) {
	name, theirs, err := decodeState(buf)
	if err != nil {
		n.log.Warn("dropping push/pull state", "err", err)
		return
	}
	n.metrics.aeRounds.Inc()
	if name == n.cfg.Name {
		return
	}
	diff := differing(n.eng.Digests(), theirs)
	if len(diff) == 0 {
		return
	}
	n.metrics.aeBuckets.Add(float64(len(diff)))
	n.log.Debug("anti-entropy: buckets differ", "peer", name, "buckets", len(diff))
	n.background(func() {
		n.sendBuckets(name, diff)
		if node, ok := n.liveNode(name); ok {
			if err := n.ml.SendReliable(node, encodeRequest(n.cfg.Name, diff)); err != nil {
				n.log.Debug("anti-entropy request failed", "peer", name, "err", err)
			}
		}
	})
}

// differing lists the buckets whose digests differ.
func differing(ours, theirs []uint64) []int {
	var diff []int
	for i := range min(len(ours), len(theirs)) {
		if ours[i] != theirs[i] {
			diff = append(diff, i)
		}
	}
	return diff
}

// answerRequest sends the requested buckets to the peer that asked.
func (n *Node) answerRequest(from string, buckets []int) {
	n.background(func() { n.sendBuckets(from, buckets) })
}

// background runs f on its own goroutine unless the node is closing.
func (n *Node) background(f func()) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.isClosed() {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if n.waitStarted() {
			f()
		}
	}()
}

// sendBuckets sends this node's entries of buckets to the peer in batches
// of up to BatchBytes, at most AntiEntropyMaxBytes in all, starting at a
// random one of the buckets so that every bucket gets its turn when the cap
// cuts an exchange short. A bucket sent to the same peer within the last
// window is skipped: both sides of one push/pull find the same buckets and
// each also asks the other, so every entry would otherwise travel twice.
func (n *Node) sendBuckets(to string, buckets []int) {
	node, ok := n.liveNode(to)
	if !ok || len(buckets) == 0 {
		return
	}
	start := rand.IntN(len(buckets))
	buckets = append(buckets[start:len(buckets):len(buckets)], buckets[:start]...)
	var batch []engine.Entry
	size, total := 0, 0
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		ok := n.sendBatch(node, msgRepair, batch)
		batch, size = batch[:0], 0
		return ok
	}
	for _, b := range buckets {
		if total >= n.cfg.AntiEntropyMaxBytes || n.isClosed() || !n.recent.claim(to, b, n.cfg.Now()) {
			continue
		}
		for _, e := range n.eng.BucketEntries(b) {
			if e.Local {
				continue
			}
			sz := entrySize(&e)
			if size+sz > n.cfg.BatchBytes && !flush() {
				return
			}
			batch = append(batch, e)
			size += sz
			total += sz
		}
	}
	flush()
}

// recentSends remembers which buckets went to which peer, and when.
type recentSends struct {
	window time.Duration
	mu     sync.Mutex
	sent   map[recentKey]time.Time
}

type recentKey struct {
	peer   string
	bucket int
}

// claim reports whether bucket may go to peer now (it did not within the
// window) and, if so, marks it sent.
func (r *recentSends) claim(peer string, bucket int, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent == nil {
		r.sent = map[recentKey]time.Time{}
	}
	if len(r.sent) > 4*engine.Buckets {
		for k, t := range r.sent {
			if now.Sub(t) >= r.window {
				delete(r.sent, k)
			}
		}
	}
	k := recentKey{peer, bucket}
	if t, ok := r.sent[k]; ok && now.Sub(t) < r.window {
		return false
	}
	r.sent[k] = now
	return true
}
