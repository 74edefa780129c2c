package cluster

import (
	"sync"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/hashicorp/memberlist"
)

// replicator sends every cluster write to every live peer, in batches over
// memberlist's reliable channel, and applies what peers send. One bounded
// queue and one sender goroutine per live peer; its own lock.
//
// A batch is the unit a later acknowledgement would name: the sender keeps
// it until SendReliable returns, and a receiver applies it with one
// Store.ApplyBatch, so "wait for k replicas" can be added as an ack
// message per batch without changing the queueing.
type replicator struct {
	n *Node

	mu     sync.RWMutex
	peers  map[string]*peer // live peers, each with its sender
	done   bool
	recent recentRing // this node's writes of the last recentWindow

	// beforeReplay, when set (tests, under mu), runs in start after the
	// peer is registered and before the recent writes are queued for it.
	beforeReplay func()
}

func newReplicator(n *Node) *replicator {
	return &replicator{n: n, peers: map[string]*peer{}, recent: recentRing{max: n.cfg.RecentBytes}}
}

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
	stop chan struct{}
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

// start begins replicating to a peer that became alive, or records its new
// address.
//
// The peer may have compared trees with this node before this node saw it
// alive: it is sent the recent writes again, those this node still holds
// as their key's newest, or the syncer repairs it when the ring is short.
// Under the lock the ring is copied and the peer registered, so that every
// write is in the copy or queued for the peer by fanOut; the copy is then
// filtered and queued outside it, one store lookup per write, while writes
// go on.
func (r *replicator) start(mn memberlist.Node) {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return
	}
	if p, ok := r.peers[mn.Name]; ok {
		p.mu.Lock()
		p.node = mn
		p.mu.Unlock()
		r.mu.Unlock()
		return
	}
	p := &peer{
		name: mn.Name, max: r.n.cfg.ReplicationQueue, node: mn,
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	recent, whole := r.recent.since(time.Now())
	r.peers[mn.Name] = p
	r.n.wg.Add(1)
	hook := r.beforeReplay
	r.mu.Unlock()
	go r.run(p)
	if hook != nil {
		hook()
	}
replay:
	for i := range recent {
		e, ok, held := r.newest(&recent[i])
		switch {
		case !held:
		case !ok:
			whole = false // expired since: the syncer sends its marker
		case !p.push(e):
			whole = false
			break replay
		}
	}
	if !whole {
		r.n.sync.markDirty(mn.Name)
	}
}

// newest is w's entry as the store holds it, when w is still the newest
// write of its key (held). An evicted value is not held (its stub keeps
// the version but Get misses). An expired one is, since its marker still
// beats older copies, but the ring keeps no values: it comes back without
// its entry (ok false), for the syncer to send.
func (r *replicator) newest(w *recentWrite) (e engine.Entry, ok, held bool) {
	st := r.n.store
	if v, found := st.Head(w.key); !found || v != w.ver {
		return engine.Entry{}, false, false
	}
	if w.deleted {
		return engine.Entry{Key: w.key, Version: w.ver, Deleted: true}, true, true
	}
	e, visible := st.Get(w.key)
	switch {
	case visible && e.Version == w.ver:
		return e, true, true
	case w.exp != 0 && w.exp <= time.Now().UnixNano():
		return engine.Entry{}, false, true
	}
	return engine.Entry{}, false, false
}

// stop stops replicating to a peer that died or left; what was queued for
// it is dropped (the sync when it returns brings it up to date).
func (r *replicator) stop(name string) {
	r.mu.Lock()
	p, ok := r.peers[name]
	delete(r.peers, name)
	r.mu.Unlock()
	if ok {
		close(p.stop)
		r.n.metrics.entriesDropped.Add(float64(p.depth()))
	}
}

// close stops every sender; no sender starts after it.
func (r *replicator) close() {
	r.mu.Lock()
	peers := r.peers
	r.peers, r.done = map[string]*peer{}, true
	r.mu.Unlock()
	for _, p := range peers {
		close(p.stop)
	}
}

// fanOut queues e for every live peer and keeps it for peers that turn
// alive within recentWindow. A peer whose queue is full is left to the
// syncer.
func (r *replicator) fanOut(e engine.Entry) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.recent.add(time.Now(), &e)
	for _, p := range r.peers {
		if !p.push(e) {
			r.n.metrics.entriesDropped.Inc()
			r.n.sync.markDirty(p.name)
		}
	}
}

// depth counts the entries queued for all peers.
func (r *replicator) depth() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d := 0
	for _, p := range r.peers {
		d += p.depth()
	}
	return d
}

// run drains p's queue in batches until the peer stops.
func (r *replicator) run(p *peer) {
	defer r.n.wg.Done()
	if !r.n.waitStarted() {
		return
	}
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		r.linger(p)
		for p.depth() > 0 {
			select {
			case <-p.stop:
				return
			default:
			}
			batch, node := p.take(r.n.cfg.BatchBytes)
			r.send(&node, batch)
			p.giveBack(batch)
		}
	}
}

// linger gives a small queue BatchDelay to grow: fewer, larger batches
// mean fewer connections and fewer log commits on the peer.
func (r *replicator) linger(p *peer) {
	if r.n.cfg.BatchDelay <= 0 || p.bytes() >= r.n.cfg.BatchBytes {
		return
	}
	t := time.NewTimer(r.n.cfg.BatchDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
}

// send sends entries to node as one batch; a failure is counted and the
// peer left to the syncer.
func (r *replicator) send(node *memberlist.Node, batch []engine.Entry) {
	n := r.n
	msg := encodeBatch(header{from: n.cfg.Name, wallMS: n.cfg.Now().UnixMilli()}, batch)
	if err := n.ml.SendReliable(node, msg); err != nil {
		n.sync.markDirty(node.Name)
		n.metrics.batchesFailed.Inc()
		n.metrics.entriesDropped.Add(float64(len(batch)))
		n.log.Debug("replication send failed", "peer", node.Name, "entries", len(batch), "err", err)
		return
	}
	n.metrics.batchesSent.Inc()
	n.metrics.entriesSent.Add(float64(len(batch)))
}

// receive handles one message from a peer.
func (r *replicator) receive(b []byte) {
	n := r.n
	if len(b) == 0 || b[0] != msgBatch {
		n.reject("", "bad_message", "a message of unknown type")
		return
	}
	h, ents, err := decodeBatch(b[1:])
	if err != nil {
		n.reject("", "bad_message", err.Error())
		return
	}
	n.metrics.batchesReceived.Inc()
	n.applyRemote(h, ents, false)
}
