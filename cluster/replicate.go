package cluster

import (
	"sync"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/hashicorp/memberlist"
)

// peer is one live peer's replication queue and its sender.
type peer struct {
	name string
	max  int

	mu    sync.Mutex
	node  memberlist.Node
	queue []engine.Entry
	size  int // sum of entrySize over queue
	spare []engine.Entry

	wake chan struct{}
	done chan struct{}
}

// push queues e; it reports false when the queue is full.
func (p *peer) push(e engine.Entry) bool {
	p.mu.Lock()
	if len(p.queue) >= p.max {
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, e)
	p.size += entrySize(&e)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// take removes up to maxBytes of queued entries (at least one) and returns
// them with the peer's current address.
func (p *peer) take(maxBytes int) ([]engine.Entry, memberlist.Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size, k := 0, 0
	for k < len(p.queue) {
		size += entrySize(&p.queue[k])
		if k > 0 && size > maxBytes {
			size -= entrySize(&p.queue[k])
			break
		}
		k++
	}
	p.size -= size
	var out []engine.Entry
	if k == len(p.queue) {
		out = p.queue
		p.queue, p.spare = p.spare[:0], nil
	} else {
		// Hand out the head without copying; appends go past it.
		out = p.queue[:k:k]
		p.queue = p.queue[k:]
	}
	return out, p.node
}

// giveBack returns a sent batch's slice for reuse.
func (p *peer) giveBack(b []engine.Entry) {
	clear(b)
	p.mu.Lock()
	if p.spare == nil && cap(b) <= p.max {
		p.spare = b[:0]
	}
	p.mu.Unlock()
}

// bytes estimates the encoded size of what is queued.
func (p *peer) bytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

func (p *peer) depth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// startPeer starts replicating to a peer that became alive.
func (n *Node) startPeer(mn *memberlist.Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isClosed() {
		return
	}
	if p, ok := n.peers[mn.Name]; ok {
		p.mu.Lock()
		p.node = *mn
		p.mu.Unlock()
		return
	}
	p := &peer{
		name: mn.Name, max: n.cfg.ReplicationQueue, node: *mn,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	n.peers[mn.Name] = p
	n.wg.Add(1)
	go n.runSender(p)
}

// updatePeer records a live peer's new address or metadata.
func (n *Node) updatePeer(mn *memberlist.Node) {
	n.mu.RLock()
	p, ok := n.peers[mn.Name]
	n.mu.RUnlock()
	if !ok {
		n.startPeer(mn)
		return
	}
	p.mu.Lock()
	p.node = *mn
	p.mu.Unlock()
}

// stopPeer stops replicating to a peer that died or left; what was queued
// for it is dropped (anti-entropy brings it back up to date).
func (n *Node) stopPeer(name string) {
	n.mu.Lock()
	p, ok := n.peers[name]
	delete(n.peers, name)
	n.mu.Unlock()
	if ok {
		close(p.done)
		n.metrics.entriesDropped.Add(float64(p.depth()))
	}
}

// stopPeers stops every sender.
func (n *Node) stopPeers() {
	n.mu.Lock()
	peers := n.peers
	n.peers = map[string]*peer{}
	n.mu.Unlock()
	for _, p := range peers {
		close(p.done)
	}
}

// fanOut queues e for every live peer.
func (n *Node) fanOut(e engine.Entry) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, p := range n.peers {
		if !p.push(e) {
			n.metrics.entriesDropped.Inc()
		}
	}
}

// queueDepth counts the entries queued for all peers.
func (n *Node) queueDepth() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	d := 0
	for _, p := range n.peers {
		d += p.depth()
	}
	return d
}

// runSender drains p's queue in batches until the peer stops.
func (n *Node) runSender(p *peer) {
	defer n.wg.Done()
	if !n.waitStarted() {
		return
	}
	for {
		select {
		case <-p.done:
			return
		case <-p.wake:
		}
		n.linger(p)
		for p.depth() > 0 {
			select {
			case <-p.done:
				return
			default:
			}
			batch, node := p.take(n.cfg.BatchBytes)
			n.sendBatch(&node, msgBatch, batch)
			p.giveBack(batch)
		}
	}
}

// linger gives a small queue BatchDelay to grow: fewer, larger batches
// mean fewer connections and fewer log commits on the peer.
func (n *Node) linger(p *peer) {
	if n.cfg.BatchDelay <= 0 || p.bytes() >= n.cfg.BatchBytes {
		return
	}
	t := time.NewTimer(n.cfg.BatchDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.done:
	}
}

// sendBatch sends entries to node as one message; a failure is counted
// and left to anti-entropy.
func (n *Node) sendBatch(node *memberlist.Node, typ byte, batch []engine.Entry) bool {
	msg := encodeBatch(typ, batch)
	if err := n.ml.SendReliable(node, msg); err != nil {
		n.metrics.batchesFailed.Inc()
		n.metrics.entriesDropped.Add(float64(len(batch)))
		n.log.Debug("replication send failed", "peer", node.Name, "entries", len(batch), "err", err)
		return false
	}
	n.metrics.batchesSent.Inc()
	n.metrics.entriesSent.Add(float64(len(batch)))
	return true
}

// receive handles one message from a peer.
func (n *Node) receive(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case msgBatch, msgRepair:
		ents, err := decodeBatch(b[1:])
		if err != nil {
			n.log.Warn("dropping replication batch", "err", err)
			return
		}
		n.applyRemote(ents, b[0] == msgRepair)
	case msgRequest:
		from, buckets, err := decodeRequest(b[1:])
		if err != nil {
			n.log.Warn("dropping anti-entropy request", "err", err)
			return
		}
		n.answerRequest(from, buckets)
	default:
		n.log.Warn("dropping message of unknown type", "type", b[0])
	}
}

// applyRemote applies entries received from a peer, after the tombstone
// rule and after moving the clock past their versions.
func (n *Node) applyRemote(ents []engine.Entry, repair bool) {
	n.metrics.batchesReceived.Inc()
	n.metrics.entriesReceived.Add(float64(len(ents)))
	horizon := n.horizon()
	keep := ents[:0]
	for _, e := range ents {
		e.Local = false
		if e.Version.Time < horizon {
			if _, ok := n.eng.Get(e.Key); !ok {
				n.metrics.entriesStale.Inc()
				continue
			}
		}
		n.clock.Observe(e.Version.Time)
		keep = append(keep, e)
	}
	if len(keep) == 0 {
		return
	}
	won, err := n.eng.ApplyBatch(keep)
	if err != nil {
		n.log.Error("applying replicated entries", "entries", len(keep), "err", err)
		return
	}
	if repair {
		n.metrics.aeRepaired.Add(float64(won))
	}
	if f := n.onApplied.Load(); f != nil {
		(*f)(keep)
	}
}

// horizon is the clock reading before which a tombstone may have been
// collected: now - TombstoneTTL.
func (n *Node) horizon() uint64 {
	ms := n.cfg.Now().Add(-n.cfg.TombstoneTTL).UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms) << counterBits
}
