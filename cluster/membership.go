package cluster

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
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
}

func decodeMeta(b []byte) meta {
	var m meta
	_ = json.Unmarshal(b, &m) // a peer without metadata has none
	return m
}

// member is what this node knows of one node.
type member struct {
	node  memberlist.Node
	meta  meta
	state string
	since time.Time // when state was last set
	inc   uint32    // newest incarnation seen in alive or suspect messages
}

// export is m as Members reports it. A suspicion that outlived the
// longest time memberlist takes to declare a node dead (it was refuted in a
// way this node did not see) counts as alive again.
func (m *member) export(suspectMax time.Duration, now time.Time) Member {
	state := m.state
	if state == StateSuspect && now.Sub(m.since) > suspectMax {
		state = StateAlive
	}
	return Member{
		Name:       m.node.Name,
		Addr:       m.node.Addr.String(),
		GossipPort: int(m.node.Port),
		HTTPAddr:   m.meta.HTTP,
		State:      state,
	}
}

// suspectMax bounds how long memberlist keeps a node suspect in a cluster
// of size nodes: SuspicionMaxTimeoutMult × SuspicionMult × log10(size) ×
// ProbeInterval (LAN defaults 6 and 4), doubled for gossip delays.
func (n *Node) suspectMax(size int) time.Duration {
	probe := n.cfg.ProbeInterval
	if probe <= 0 {
		probe = memberlist.DefaultLANConfig().ProbeInterval
	}
	scale := max(1, math.Log10(float64(size)))
	return time.Duration(2 * 6 * 4 * scale * float64(probe))
}

// events receives memberlist's membership changes.
type events Node

func (e *events) NotifyJoin(mn *memberlist.Node) {
	n := (*Node)(e)
	n.setMember(mn, StateAlive)
	if mn.Name != n.cfg.Name {
		n.startPeer(mn)
	}
}

func (e *events) NotifyUpdate(mn *memberlist.Node) {
	n := (*Node)(e)
	n.setMember(mn, StateAlive)
	if mn.Name != n.cfg.Name {
		n.updatePeer(mn)
	}
}

func (e *events) NotifyLeave(mn *memberlist.Node) {
	n := (*Node)(e)
	state := StateDead
	if decodeMeta(mn.Meta).Leaving {
		state = StateLeft
	}
	n.setMember(mn, state)
	n.stopPeer(mn.Name)
	n.log.Info("member gone", "peer", mn.Name, "state", state)
}

// setMember records mn in state.
func (n *Node) setMember(mn *memberlist.Node, state string) {
	m := &member{node: *mn, meta: decodeMeta(mn.Meta), state: state, since: n.cfg.Now()}
	m.node.Addr = slices.Clone(mn.Addr)
	m.node.Meta = slices.Clone(mn.Meta)
	if m.meta.Leaving && state == StateAlive {
		state = StateLeft // announced its leave; the dead message follows
		m.state = state
	}
	n.mu.Lock()
	if old, ok := n.members[mn.Name]; ok {
		m.inc = old.inc
	}
	n.members[mn.Name] = m
	n.mu.Unlock()
}

// Members lists every node this node has heard of, itself included,
// sorted by name: alive, suspect (a probe failed and the node has not
// refuted it yet), left (announced its leave) or dead (declared failed).
func (n *Node) Members() []Member {
	now := n.cfg.Now()
	n.mu.RLock()
	limit := n.suspectMax(len(n.members))
	out := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m.export(limit, now))
	}
	n.mu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// forgetGone drops members dead or left for longer than ReconnectTimeout.
func (n *Node) forgetGone() {
	cutoff := n.cfg.Now().Add(-n.cfg.ReconnectTimeout)
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, m := range n.members {
		if (m.state == StateDead || m.state == StateLeft) && m.since.Before(cutoff) {
			delete(n.members, name)
		}
	}
}

// countMembers counts members in state.
func (n *Node) countMembers(state string) int {
	c := 0
	for _, m := range n.Members() {
		if m.State == state {
			c++
		}
	}
	return c
}

// liveNode returns the memberlist node of a live (alive or suspect) peer.
func (n *Node) liveNode(name string) (*memberlist.Node, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	m, ok := n.members[name]
	if !ok || m.state != StateAlive && m.state != StateSuspect {
		return nil, false
	}
	node := m.node
	return &node, true
}

// delegate answers memberlist's questions about this node and receives
// the cluster's messages.
type delegate Node

// NodeMeta is the metadata gossiped about this node.
func (d *delegate) NodeMeta(limit int) []byte {
	n := (*Node)(d)
	n.mu.RLock()
	m := meta{HTTP: n.cfg.HTTPAddr, Leaving: n.leaving}
	n.mu.RUnlock()
	b, _ := json.Marshal(m)
	if len(b) > limit {
		n.log.Error("node metadata exceeds memberlist's limit", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

// GetBroadcasts: every message goes out reliably, none piggybacks on gossip.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// NotifyMsg handles a message a peer sent with SendReliable.
func (d *delegate) NotifyMsg(b []byte) { (*Node)(d).receive(b) }

// LocalState is this node's half of a push/pull: its bucket digests.
func (d *delegate) LocalState(join bool) []byte { return (*Node)(d).localState() }

// MergeRemoteState compares a peer's digests with this node's.
func (d *delegate) MergeRemoteState(buf []byte, join bool) { (*Node)(d).mergeState(buf) }
