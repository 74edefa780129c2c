package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member states as Members reports them.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// Member is one node as membership sees it.
type Member struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	GossipPort int    `json:"gossip_port"`
	HTTPAddr   string `json:"http_addr"`
	State      string `json:"state"` // alive, suspect, dead, left
}

// meta is the node metadata gossiped with every alive message.
type meta struct {
	HTTP    string `json:"h,omitempty"`
	Leaving bool   `json:"l,omitempty"`
	// ID is the node id (hex), so a restarted node is told apart from a
	// second process that took its name.
	ID string `json:"id,omitempty"`
	// Synced is when the node was last known in sync, Unix milliseconds.
	Synced int64 `json:"s,omitempty"`
	// Joining: the node has not finished its first sync since it started;
	// it syncs with its peers itself, one at a time, so they do not start
	// syncs towards it.
	Joining bool `json:"j,omitempty"`
}

func decodeMeta(b []byte) meta {
	var m meta
	_ = json.Unmarshal(b, &m) // a peer without metadata has none
	return m
}

// member is what this node knows of one node.
type member struct {
	node    memberlist.Node
	meta    meta
	state   string    // alive, dead or left, as memberlist's events say
	since   time.Time // when state was last set
	lastAck time.Time // this node's last answered probe of it (or since)
}

// membership is the node's view of the cluster: memberlist's events, the
// metadata of every member, who is suspect, the peers remembered on disk
// and the name-clash check. It has its own lock and calls out (onAlive,
// onGone) without holding it.
type membership struct {
	n  *Node
	id *identity

	mu       sync.RWMutex
	members  map[string]*member // every node heard of, this one included
	leaving  bool
	gossiped time.Time // the sync time last announced in the metadata
	anyAck   time.Time // this node's last answered probe of any member

	onAlive func(mn memberlist.Node, joined bool) // a peer is alive; joined: it just became so
	onGone  func(name string)                     // a peer died or left
}

func newMembership(n *Node, id *identity) *membership {
	return &membership{n: n, id: id, members: map[string]*member{}}
}

// localMeta is this node's metadata.
func (m *membership) localMeta() meta {
	m.mu.RLock()
	leaving := m.leaving
	m.mu.RUnlock()
	mt := meta{HTTP: m.n.cfg.HTTPAddr, Leaving: leaving, ID: strconv.FormatUint(m.id.id, 16), Joining: m.n.sync.joining()}
	if t := m.id.lastSynced(); !t.IsZero() {
		mt.Synced = t.UnixMilli()
	}
	return mt
}

// gossipedSynced is the sync time the node last announced.
func (m *membership) gossipedSynced() time.Time {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.gossiped
}

func (m *membership) noteGossiped(t time.Time) {
	m.mu.Lock()
	m.gossiped = t
	m.mu.Unlock()
}

func (m *membership) isLeaving() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.leaving
}

func (m *membership) setLeaving() {
	m.mu.Lock()
	m.leaving = true
	m.mu.Unlock()
}

// set records mn in state and tells the node when a peer came or went.
func (m *membership) set(mn *memberlist.Node, state string) {
	now := m.n.cfg.Now()
	mb := &member{node: *mn, meta: decodeMeta(mn.Meta), state: state, since: now, lastAck: now}
	mb.node.Addr = slices.Clone(mn.Addr)
	mb.node.Meta = slices.Clone(mn.Meta)
	if mb.meta.Leaving && state == StateAlive {
		mb.state = StateLeft // announced its leave; the dead message follows
	}
	self := mn.Name == m.n.cfg.Name
	m.mu.Lock()
	old, had := m.members[mn.Name]
	if had && old.state == mb.state {
		mb.since, mb.lastAck = old.since, old.lastAck
	}
	m.members[mn.Name] = mb
	m.mu.Unlock()
	if self {
		return
	}
	if mb.state == StateAlive {
		m.id.seen(mb.node.Address())
		joined := !had || old.state != StateAlive
		if m.onAlive != nil {
			m.onAlive(mb.node, joined)
		}
		if joined {
			m.n.log.Info("member alive", "peer", mn.Name, "addr", mb.node.Address())
		}
		return
	}
	if m.onGone != nil {
		m.onGone(mn.Name)
	}
	if !had || old.state != mb.state {
		m.n.log.Info("member gone", "peer", mn.Name, "state", mb.state)
	}
}

// acked notes an answered probe of a peer.
func (m *membership) acked(name string) {
	now := m.n.cfg.Now()
	m.mu.Lock()
	if mb, ok := m.members[name]; ok {
		mb.lastAck = now
	}
	m.anyAck = now
	m.mu.Unlock()
}

// suspectAfter is how long an alive member may go without answering one
// of this node's probes before it is shown as suspect: memberlist probes
// the members in turn, one every ProbeInterval, so each is probed about
// once per round of size members; three rounds and two probe timeouts
// give a loaded machine slack, and memberlist declares a node that really
// failed dead soon after.
func (m *membership) suspectAfter(size int) time.Duration {
	probe, timeout := m.n.cfg.ProbeInterval, m.n.cfg.ProbeTimeout
	d := memberlist.DefaultLANConfig()
	if probe <= 0 {
		probe = d.ProbeInterval
	}
	if timeout <= 0 {
		timeout = d.ProbeTimeout
	}
	return time.Duration(3*max(size, 2))*probe + 2*timeout
}

// export is mb as Members reports it: alive turns suspect when this
// node's probes of it have gone unanswered for longer than after while
// other members kept answering (when none answers, this node is the one
// cut off or starved, and memberlist's own verdict follows).
func (mb *member) export(after time.Duration, now, anyAck time.Time, self string) Member {
	state := mb.state
	if state == StateAlive && mb.node.Name != self && now.Sub(mb.lastAck) > after && anyAck.Sub(mb.lastAck) > after/2 {
		state = StateSuspect
	}
	return Member{
		Name:       mb.node.Name,
		Addr:       mb.node.Addr.String(),
		GossipPort: int(mb.node.Port),
		HTTPAddr:   mb.meta.HTTP,
		State:      state,
	}
}

// list is every member heard of, sorted by name.
func (m *membership) list() []Member {
	now := m.n.cfg.Now()
	m.mu.RLock()
	after := m.suspectAfter(len(m.members))
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb.export(after, now, m.anyAck, m.n.cfg.Name))
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// count counts members in state.
func (m *membership) count(state string) int {
	c := 0
	for _, mb := range m.list() {
		if mb.State == state {
			c++
		}
	}
	return c
}

// peer is a live peer as the other parts of the node need it.
type peerInfo struct {
	name    string
	node    memberlist.Node
	http    string
	synced  time.Time
	joining bool
}

// live returns the live (alive, not left) peers.
func (m *membership) live() []peerInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []peerInfo
	for name, mb := range m.members {
		if name == m.n.cfg.Name || mb.state != StateAlive {
			continue
		}
		p := peerInfo{name: name, node: mb.node, http: mb.meta.HTTP, joining: mb.meta.Joining}
		if mb.meta.Synced > 0 {
			p.synced = time.UnixMilli(mb.meta.Synced)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b peerInfo) int { return strings.Compare(a.name, b.name) })
	return out
}

// livePeer returns one live peer by name.
func (m *membership) livePeer(name string) (peerInfo, bool) {
	for _, p := range m.live() {
		if p.name == name {
			return p, true
		}
	}
	return peerInfo{}, false
}

// gone returns the gossip addresses of members dead (only those) for less
// than ReconnectTimeout, and forgets members gone for longer.
func (m *membership) deadAddrs() []string {
	cutoff := m.n.cfg.Now().Add(-m.n.cfg.ReconnectTimeout)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name, mb := range m.members {
		switch {
		case (mb.state == StateDead || mb.state == StateLeft) && mb.since.Before(cutoff):
			delete(m.members, name)
		case mb.state == StateDead:
			out = append(out, mb.node.Address())
		}
	}
	return out
}

// checkClash looks in a peer's member list for another process that uses
// this node's name: alive at another address, with another node id. A
// restart of this node (same address, or same id) is no clash.
func (m *membership) checkClash(peers []*memberlist.Node, self memberlist.Node) error {
	myID := strconv.FormatUint(m.id.id, 16)
	for _, p := range peers {
		if p.Name != self.Name || p.State != memberlist.StateAlive {
			continue
		}
		sameAddr := p.Addr.Equal(self.Addr) && p.Port == self.Port
		if id := decodeMeta(p.Meta).ID; sameAddr || id == myID {
			continue
		}
		return fmt.Errorf("%w: %q is already used by the live member at %s; give this node another --name (or stop that one first)",
			ErrNameTaken, p.Name, net.JoinHostPort(p.Addr.String(), strconv.Itoa(int(p.Port))))
	}
	return nil
}

// checkIncoming refuses a peer's state that carries a member with a name
// this node holds alive at another address (a second process that took a
// member's name), so the cluster stays as it was.
func (m *membership) checkIncoming(peers []*memberlist.Node) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, p := range peers {
		mb, ok := m.members[p.Name]
		if !ok || mb.state != StateAlive || p.State != memberlist.StateAlive {
			continue
		}
		if mb.node.Addr.Equal(p.Addr) && mb.node.Port == p.Port {
			continue
		}
		if id := decodeMeta(p.Meta).ID; id != "" && id == mb.meta.ID {
			continue // the same node at a new address
		}
		return fmt.Errorf("%w: %q joins from %s but is alive at %s", ErrNameTaken, p.Name,
			net.JoinHostPort(p.Addr.String(), strconv.Itoa(int(p.Port))), mb.node.Address())
	}
	return nil
}

// events receives memberlist's membership changes.
type events membership

func (e *events) NotifyJoin(mn *memberlist.Node)   { (*membership)(e).set(mn, StateAlive) }
func (e *events) NotifyUpdate(mn *memberlist.Node) { (*membership)(e).set(mn, StateAlive) }
func (e *events) NotifyLeave(mn *memberlist.Node) {
	state := StateDead
	if decodeMeta(mn.Meta).Leaving {
		state = StateLeft
	}
	(*membership)(e).set(mn, state)
}

// NotifyMerge checks a peer's member list before memberlist merges it (at
// join, on both sides): a clash with this node's own name stops this node;
// a clash with a member this node holds alive refuses the merge.
func (e *events) NotifyMerge(peers []*memberlist.Node) error {
	m := (*membership)(e)
	n := m.n
	host, port, _ := net.SplitHostPort(n.addr) // set before memberlist starts
	p, _ := strconv.Atoi(port)
	self := memberlist.Node{Name: n.cfg.Name, Addr: net.ParseIP(host), Port: uint16(p)}
	if err := m.checkClash(peers, self); err != nil {
		n.fail(err)
		return err
	}
	if err := m.checkIncoming(peers); err != nil {
		n.log.Warn("refusing a member", "err", err)
		return err
	}
	return nil
}

// NotifyPingComplete notes an answered probe (memberlist's PingDelegate).
func (e *events) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	(*membership)(e).acked(other.Name)
}

// AckPayload: probes carry nothing.
func (e *events) AckPayload() []byte { return nil }

// delegate answers memberlist's questions about this node and receives
// replication batches.
type delegate Node

// NodeMeta is the metadata gossiped about this node.
func (d *delegate) NodeMeta(limit int) []byte {
	n := (*Node)(d)
	b, _ := json.Marshal(n.mem.localMeta())
	if len(b) > limit {
		n.log.Error("node metadata exceeds memberlist's limit", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

// GetBroadcasts: every message goes out reliably, none piggybacks on gossip.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// NotifyMsg handles a message a peer sent with SendReliable.
func (d *delegate) NotifyMsg(b []byte) { (*Node)(d).rep.receive(b) }

// LocalState: push/pull carries membership only; data is compared by the
// sync protocol (sync.go).
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState: nothing to merge (see LocalState).
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}
