package cluster

import (
	"encoding/binary"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// memberlist's packet types this node reads (net.go of memberlist v0.7).
// memberlist tells delegates when a node joins, changes or is declared
// gone, but not when it becomes suspect or refutes a suspicion, so the
// transport shows every gossip packet, sent or received, to observePacket,
// which reads just those two messages.
const (
	mlSuspectMsg  = 3
	mlAliveMsg    = 4
	mlCompoundMsg = 7
	mlHasCrcMsg   = 12
)

// mlSuspect and mlAlive mirror the fields of memberlist's messages that
// matter here; msgpack matches them by name.
type mlSuspect struct {
	Incarnation uint32
	Node        string
}

type mlAlive struct {
	Incarnation uint32
	Node        string
}

// observePacket notes the suspect and alive messages in one gossip packet.
func (n *Node) observePacket(buf []byte) {
	n.observeMsg(buf, 0)
}

func (n *Node) observeMsg(buf []byte, depth int) {
	if len(buf) == 0 || depth > 2 {
		return
	}
	switch buf[0] {
	case mlHasCrcMsg:
		if len(buf) >= 5 {
			n.observeMsg(buf[5:], depth+1)
		}
	case mlCompoundMsg:
		for _, part := range splitCompound(buf[1:]) {
			n.observeMsg(part, depth+1)
		}
	case mlSuspectMsg:
		var s mlSuspect
		if decodeMsgpack(buf[1:], &s) {
			n.noteSuspect(s.Node, s.Incarnation)
		}
	case mlAliveMsg:
		var a mlAlive
		if decodeMsgpack(buf[1:], &a) {
			n.noteAlive(a.Node, a.Incarnation)
		}
	}
}

// splitCompound splits a compound message body: a count byte, count
// big-endian uint16 lengths, then the parts.
func splitCompound(buf []byte) [][]byte {
	if len(buf) < 1 {
		return nil
	}
	k := int(buf[0])
	buf = buf[1:]
	if len(buf) < 2*k {
		return nil
	}
	parts := make([][]byte, 0, k)
	body := buf[2*k:]
	for i := range k {
		l := int(binary.BigEndian.Uint16(buf[2*i:]))
		if len(body) < l {
			break
		}
		parts = append(parts, body[:l])
		body = body[l:]
	}
	return parts
}

func decodeMsgpack(b []byte, v any) bool {
	return codec.NewDecoderBytes(b, &codec.MsgpackHandle{}).Decode(v) == nil
}

// noteSuspect marks an alive member suspect when the suspicion is about
// its current incarnation.
func (n *Node) noteSuspect(name string, inc uint32) {
	if name == n.cfg.Name {
		return // memberlist refutes it
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if m, ok := n.members[name]; ok && m.state == StateAlive && inc >= m.inc {
		m.state, m.inc, m.since = StateSuspect, inc, n.cfg.Now()
	}
}

// noteAlive clears a suspicion refuted by a newer incarnation.
func (n *Node) noteAlive(name string, inc uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.members[name]
	if !ok || inc < m.inc {
		return
	}
	if m.state == StateSuspect && inc > m.inc {
		m.state, m.since = StateAlive, n.cfg.Now()
	}
	m.inc = inc
}
