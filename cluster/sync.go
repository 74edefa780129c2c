package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/disperse/disperse/engine"
)

// Sync routes, served by Node.Handler under SyncPathPrefix.
const (
	SyncPathPrefix = "/internal/cluster/"
	pathTree       = SyncPathPrefix + "tree"
	pathLeaves     = SyncPathPrefix + "leaves"
	pathPull       = SyncPathPrefix + "pull"
	pathPush       = SyncPathPrefix + "push"
	headerSynced   = "X-Disperse-Synced" // the answering node's last sync, Unix ms
)

// Bounds of the sync protocol.
const (
	leavesPerRound  = 4096     // leaves listed in one request
	maxRequestBytes = 32 << 20 // a tree, leaves or pull request
)

// syncer compares this node's entries with a peer's and exchanges the
// difference (see doc.go, "Sync"): when a peer turns alive, every
// AntiEntropyInterval with a random peer, and for the node's first sync
// after it starts, which readiness waits for. Its own lock.
type syncer struct {
	n      *Node
	client *http.Client
	start  time.Time
	// needFirst: the node joins an existing cluster (it has peers to join
	// or remembers some), so readiness waits for a first sync.
	needFirst bool

	mu       sync.Mutex
	inflight map[string]bool
	synced   string          // the peer of the first completed sync
	dirty    map[string]bool // peers that missed a write: sync soon
	// The joining node's catch-up (joinSyncs): whether it runs, and
	// whether a peer turned alive since it last looked.
	joinRunning, joinKicked bool
	joinAnnounced           bool // the end of joining was gossiped
}

func newSyncer(n *Node, needFirst bool) *syncer {
	return &syncer{
		n: n, start: n.cfg.Now(), needFirst: needFirst, inflight: map[string]bool{}, dirty: map[string]bool{},
		client: &http.Client{Transport: &signingTransport{auth: n.auth, base: &http.Transport{
			TLSClientConfig:       n.cfg.PeerTLS,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       time.Minute,
			ResponseHeaderTimeout: 30 * time.Second,
		}}},
	}
}

// readiness: see Node.Readiness.
func (s *syncer) readiness() (bool, string) {
	s.mu.Lock()
	peer := s.synced
	s.mu.Unlock()
	switch {
	case peer != "":
		return true, "synced with " + peer
	case !s.needFirst:
		return true, "no peers to sync with"
	case s.n.cfg.Now().Sub(s.start) >= s.n.cfg.ReadySyncTimeout:
		return true, fmt.Sprintf("no sync with a live peer within %v", s.n.cfg.ReadySyncTimeout)
	}
	return false, "waiting for the first sync with a live peer"
}

// firstDone reports whether a sync has completed since start.
func (s *syncer) firstDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced != ""
}

// joining reports whether the node is joining an existing cluster: it has
// peers to sync with and has not finished a first sync, and the
// ready-sync timeout has not passed. It is gossiped in the metadata.
func (s *syncer) joining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.needFirst && s.synced == "" && s.n.cfg.Now().Sub(s.start) < s.n.cfg.ReadySyncTimeout
}

// peerJoined reacts to a peer that just turned alive. A joining node
// catches up itself (joinSyncs). Otherwise a joining peer is left to do
// so, and with any other peer the side with the smaller name syncs (its
// sync covers both directions), or this node while it has not synced
// yet. Writes taken here before the peer turned alive here, after the
// peer's own sync looked, reach it from the replicator's recent writes.
func (s *syncer) peerJoined(name string) {
	if s.joining() {
		s.startJoin()
		return
	}
	p, ok := s.n.mem.livePeer(name)
	if !ok || p.joining {
		return
	}
	if !s.firstDone() || s.n.cfg.Name < name {
		s.n.background(func() { s.syncNamed(name) })
	}
}

// startJoin runs joinSyncs unless it runs; then it looks again.
func (s *syncer) startJoin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.joinRunning {
		s.joinKicked = true
		return
	}
	s.joinRunning = true
	s.n.background(s.joinSyncs)
}

// joinSyncs is a joining node's catch-up: a sync with one live peer at a
// time (those not joining themselves first) until one completes, then one
// with each other live peer, which moves only what the first lacked. One
// full transfer rather than one from every peer at once.
func (s *syncer) joinSyncs() {
	tried := map[string]bool{}
	for {
		if !s.firstDone() {
			if p, ok := s.nextJoinPeer(tried); ok {
				tried[p] = true
				s.syncNamed(p)
				continue
			}
		} else {
			for _, p := range s.n.mem.live() {
				if !tried[p.name] {
					tried[p.name] = true
					s.syncNamed(p.name)
				}
			}
		}
		s.mu.Lock()
		if !s.joinKicked || s.n.isClosed() {
			s.joinRunning = false
			s.mu.Unlock()
			return
		}
		s.joinKicked = false
		s.mu.Unlock()
		if !s.firstDone() {
			clear(tried) // a peer that failed may have come back
		}
	}
}

// nextJoinPeer picks the live peer a joining node syncs with next.
func (s *syncer) nextJoinPeer(tried map[string]bool) (string, bool) {
	var joining string
	for _, p := range s.n.mem.live() {
		switch {
		case tried[p.name] || p.http == "":
		case !p.joining:
			return p.name, true
		case joining == "":
			joining = p.name
		}
	}
	return joining, joining != ""
}

// markDirty notes that a write may not have reached peer (a failed or
// dropped batch); the loop syncs with it within a second, rather than at
// the next AntiEntropyInterval.
func (s *syncer) markDirty(peer string) {
	s.mu.Lock()
	s.dirty[peer] = true
	s.mu.Unlock()
}

// repairDirty starts a sync with every peer marked dirty that is alive; a
// peer that is not will be synced with when it returns.
func (s *syncer) repairDirty() {
	s.mu.Lock()
	names := make([]string, 0, len(s.dirty))
	for name := range s.dirty {
		names = append(names, name)
	}
	clear(s.dirty)
	s.mu.Unlock()
	for _, name := range names {
		s.n.background(func() {
			if !s.syncNamed(name) {
				s.markDirty(name) // failed, or one that began before the miss runs: again later
			}
		})
	}
}

// syncNamed syncs with a live peer by name, unless a sync with it runs;
// it reports false in that case and when the sync fails.
func (s *syncer) syncNamed(name string) bool {
	p, ok := s.n.mem.livePeer(name)
	if !ok || p.http == "" {
		return true
	}
	s.mu.Lock()
	if s.inflight[name] {
		s.mu.Unlock()
		return false
	}
	s.inflight[name] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, name)
		s.mu.Unlock()
	}()
	started := time.Now()
	st, err := s.syncWith(p)
	if err != nil {
		s.n.metrics.syncs.WithLabelValues("error").Inc()
		s.n.log.Debug("sync failed", "peer", name, "err", err)
		return false
	}
	s.n.metrics.syncs.WithLabelValues("ok").Inc()
	s.mu.Lock()
	first := s.synced == ""
	if first {
		s.synced = name
	}
	s.mu.Unlock()
	lvl := s.n.log.Debug
	if first || st.pulled+st.pushed+st.purged > 0 {
		lvl = s.n.log.Info
	}
	lvl("synced", "peer", name, "leaves_differing", st.leaves, "pulled", st.pulled, "pushed", st.pushed,
		"purged", st.purged, "digest_bytes", st.digestBytes, "took", time.Since(started))
	return true
}

// syncStats is what one sync did.
type syncStats struct {
	leaves, pulled, pushed, purged int
	digestBytes                    int
}

// syncWith runs one sync with p as the initiator: compare the hash trees
// top-down, list the keys of differing leaves, pull what the peer has
// newer, push what this node has newer. A stale node (away longer than
// TombstoneTTL) neither offers entries older than the tombstone horizon
// nor keeps those a fresh peer lacks: the peer may have deleted them and
// collected the tombstone.
func (s *syncer) syncWith(p peerInfo) (syncStats, error) {
	n := s.n
	var st syncStats
	startedAt := n.cfg.Now()
	wasFresh := n.fresh()
	mine := buildTree(n.store.LeafDigests())
	theirs, peerSynced, err := s.treeLevel(p, startLevel, nil, &st)
	if err != nil {
		return st, err
	}
	diff := mine.differing(startLevel, nil, theirs)
	for level := startLevel; level < treeLevels && len(diff) > 0; level++ {
		hashes, _, err := s.treeLevel(p, level, diff, &st)
		if err != nil {
			return st, err
		}
		diff = mine.differing(level+1, diff, hashes)
	}
	peerFresh := !peerSynced.IsZero() && n.cfg.Now().Sub(peerSynced) <= n.cfg.TombstoneTTL
	for len(diff) > 0 {
		chunk := diff[:min(len(diff), leavesPerRound)]
		diff = diff[len(chunk):]
		if err := s.reconcile(p, chunk, wasFresh, peerFresh, &st); err != nil {
			return st, err
		}
	}
	if wasFresh || peerFresh {
		n.id.markSynced(startedAt)
		if !wasFresh {
			n.log.Info("in sync with the cluster again", "peer", p.name)
			n.announce()
		}
	}
	return st, nil
}

// treeLevel asks p for the hashes of level (parents nil) or of the
// children of parents, a node of level each.
func (s *syncer) treeLevel(p peerInfo, level int, parents []int, st *syncStats) ([]uint64, time.Time, error) {
	body, synced, err := s.post(p, pathTree, encodeIndices(s.n.cfg.Name, level, parents))
	if err != nil {
		return nil, time.Time{}, err
	}
	st.digestBytes += len(body)
	want := len(parents) * fanout
	if parents == nil {
		want = 1 << (fanoutBits * level)
	}
	if len(body) != 8*want {
		return nil, time.Time{}, fmt.Errorf("%w: tree answer of %d bytes, want %d", ErrMessage, len(body), 8*want)
	}
	out := make([]uint64, want)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(body[8*i:])
	}
	return out, synced, nil
}

// reconcile lists the keys of some differing leaves on both sides and
// moves what differs.
func (s *syncer) reconcile(p peerInfo, leaves []int, fresh, peerFresh bool, st *syncStats) error {
	n := s.n
	body, _, err := s.post(p, pathLeaves, encodeIndices(n.cfg.Name, treeLevels, leaves))
	if err != nil {
		return err
	}
	st.digestBytes += len(body)
	theirs, err := decodeLeaves(body, len(leaves))
	if err != nil {
		return err
	}
	horizon := n.horizon()
	want := map[int][]uint64{}
	var push, purge []engine.Entry
	for i, leaf := range leaves {
		st.leaves++
		have := map[uint64]engine.Version{}
		for _, r := range theirs[i] {
			have[r.hash] = r.version
		}
		mine := map[uint64]bool{}
		for _, e := range n.store.LeafEntries(leaf) {
			h := keyHash(e.Key)
			mine[h] = true
			v, ok := have[h]
			switch {
			case ok && v.Compare(e.Version) > 0:
				want[leaf] = append(want[leaf], h)
			case ok && v == e.Version:
			case e.Evicted:
				// Evicted here: nothing to send, and the stub keeps the
				// peer from sending the value back.
			case fresh || e.Version.Time >= horizon:
				push = append(push, e)
			case peerFresh && !ok:
				purge = append(purge, e)
			}
		}
		for _, r := range theirs[i] {
			if !mine[r.hash] {
				want[leaf] = append(want[leaf], r.hash)
			}
		}
	}
	if len(want) > 0 {
		got, err := s.pull(p, want)
		st.pulled += got
		if err != nil {
			return err
		}
	}
	if len(push) > 0 {
		if err := s.push(p, push); err != nil {
			return err
		}
		st.pushed += len(push)
	}
	if len(purge) > 0 {
		if err := n.purge(purge); err != nil {
			return err
		}
		st.purged += len(purge)
	}
	return nil
}

// pull asks p for the entries of wanted keys and applies them.
func (s *syncer) pull(p peerInfo, want map[int][]uint64) (int, error) {
	resp, err := s.do(p, pathPull, encodeWant(s.n.cfg.Name, want))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	got := 0
	err = readFrames(resp.Body, s.n.frameLimit(), func(ents []engine.Entry) error {
		got += len(ents)
		s.n.applyRemote(header{from: p.name}, ents, true)
		return nil
	})
	return got, err
}

// push sends entries to p.
func (s *syncer) push(p peerInfo, ents []engine.Entry) error {
	if s.n.cfg.Faults.Cut(s.n.cfg.Name, p.name) {
		return fmt.Errorf("cluster: push to %s: %w", p.name, ErrPartitioned)
	}
	pr, pw := io.Pipe()
	go func() {
		fw := newFrameWriter(pw, s.n.cfg.BatchBytes)
		for i := range ents {
			if err := fw.add(&ents[i]); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(fw.flush())
	}()
	req, err := http.NewRequest(http.MethodPost, peerURL(p.http, pathPush), pr)
	if err != nil {
		pr.Close()
		return err
	}
	req.Header.Set(headerFrom, s.n.cfg.Name)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: push to %s: %w", p.name, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("cluster: push to %s: status %d", p.name, resp.StatusCode)
	}
	return nil
}

const headerFrom = "X-Disperse-From"

// peerURL is path on a peer's advertised HTTP address: host:port, or
// https://host:port for a peer that serves TLS.
func peerURL(addr, path string) string {
	if strings.HasPrefix(addr, "https://") {
		return addr + path
	}
	return "http://" + addr + path
}

// do posts body to p's route and returns the answer, which must be 200.
func (s *syncer) do(p peerInfo, path string, body []byte) (*http.Response, error) {
	if s.n.cfg.Faults.Cut(s.n.cfg.Name, p.name) {
		return nil, fmt.Errorf("cluster: sync with %s: %w", p.name, ErrPartitioned)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(p.http, path), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set(headerFrom, s.n.cfg.Name)
	resp, err := s.client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cluster: sync with %s: %w", p.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("cluster: sync with %s: %s answered %d", p.name, path, resp.StatusCode)
	}
	resp.Body = &cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// post is do for a small answer read whole; it also returns the peer's
// last sync time.
func (s *syncer) post(p peerInfo, path string, body []byte) ([]byte, time.Time, error) {
	resp, err := s.do(p, path, body)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBytes+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cluster: sync with %s: %w", p.name, err)
	}
	if len(b) > maxRequestBytes {
		return nil, time.Time{}, fmt.Errorf("%w: %s answered more than %d bytes", ErrMessage, path, maxRequestBytes)
	}
	var synced time.Time
	if ms, err := strconv.ParseInt(resp.Header.Get(headerSynced), 10, 64); err == nil && ms > 0 {
		synced = time.UnixMilli(ms)
	}
	return b, synced, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// loop runs the node's periodic duties until it closes: every second the
// freshness bookkeeping (see doc.go, "Tombstones"), forgetting recent
// writes that left their window and a sync with peers that missed a write;
// every AntiEntropyInterval a sync with a random live peer.
func (s *syncer) loop() {
	n := s.n
	defer n.wg.Done()
	if !n.waitStarted() {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	nextSync := time.Now().Add(n.cfg.AntiEntropyInterval)
	for {
		select {
		case <-n.closed:
			return
		case <-tick.C:
		}
		s.keepFresh()
		n.rep.recent.expire(time.Now())
		s.repairDirty()
		s.announceJoined()
		if err := n.id.save(min(n.cfg.TombstoneTTL/4, time.Minute)); err != nil {
			n.log.Warn("saving the cluster state", "err", err)
		}
		if time.Now().Before(nextSync) {
			continue
		}
		nextSync = time.Now().Add(n.cfg.AntiEntropyInterval)
		if live := settled(n.mem.live()); len(live) > 0 {
			p := live[rand.IntN(len(live))]
			n.background(func() { s.syncNamed(p.name) })
		}
		n.rejoinDead()
	}
}

// settled drops the joining peers from live: they sync themselves.
func settled(live []peerInfo) []peerInfo {
	out := live[:0]
	for _, p := range live {
		if !p.joining {
			out = append(out, p)
		}
	}
	return out
}

// announceJoined gossips, once, that the node no longer joins.
func (s *syncer) announceJoined() {
	s.mu.Lock()
	done := !s.needFirst || s.joinAnnounced
	s.mu.Unlock()
	if done || s.joining() {
		return
	}
	s.mu.Lock()
	s.joinAnnounced = true
	s.mu.Unlock()
	s.n.announce()
}

// keepFresh keeps the sync watermark: a fresh node stays fresh while it
// runs (it receives every write, and the periodic sync repairs what the
// fan-out missed), so its watermark follows the clock; a stale node whose
// live peers are all stale becomes fresh once it is the one that was in
// sync most recently (ties: the smallest name), so a cluster that was down
// as a whole longer than the TTL does not stay stale for ever.
func (s *syncer) keepFresh() {
	n := s.n
	now := n.cfg.Now()
	live := n.mem.live()
	if n.fresh() {
		n.id.markSynced(now)
		if meta := n.mem.gossipedSynced(); now.Sub(meta) > n.cfg.TombstoneTTL/8 {
			n.announce()
		}
		return
	}
	if len(live) == 0 || now.Sub(s.start) < n.cfg.ReadySyncTimeout {
		return
	}
	mine := n.id.lastSynced()
	for _, p := range live {
		if !p.synced.IsZero() && now.Sub(p.synced) <= n.cfg.TombstoneTTL {
			return // a fresh peer exists: sync with it instead
		}
		if p.synced.After(mine) || p.synced.Equal(mine) && p.name < n.cfg.Name {
			return
		}
	}
	if mine.IsZero() {
		// No member was ever in sync: a cluster formed from scratch.
		n.log.Info("a new cluster: no member has synced before; this node counts as in sync")
	} else {
		n.log.Warn("every live member was away longer than the tombstone TTL; this node was in sync most recently and now counts as in sync",
			"last_synced", mine)
	}
	n.id.markSynced(now)
	n.announce()
}
