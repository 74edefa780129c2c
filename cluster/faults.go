package cluster

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Faults cuts the network between named nodes of one process. Every node
// built with the same Faults (Config.Faults) consults it before it sends a
// gossip packet, opens a gossip stream (push/pull, replication batches,
// anti-entropy requests) or accepts a packet; a cut link drops the packet
// and fails the dial. Cuts are symmetric. It is safe for concurrent use and
// meant for tests, like memberlist's MockTransport or raft's Partition.
type Faults struct {
	mu    sync.RWMutex
	cut   map[[2]string]bool
	names map[string]string // gossip host:port -> node name
}

// NewFaults returns a Faults with no link cut.
func NewFaults() *Faults {
	return &Faults{cut: map[[2]string]bool{}, names: map[string]string{}}
}

// Partition cuts every link between a node of a and a node of b.
func (f *Faults) Partition(a, b []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			f.cut[[2]string{x, y}] = true
			f.cut[[2]string{y, x}] = true
		}
	}
}

// Heal restores every link.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
}

// Cut reports whether the link between the nodes named from and to is cut.
func (f *Faults) Cut(from, to string) bool {
	if f == nil {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cut[[2]string{from, to}]
}

// register records which node listens on a gossip address.
func (f *Faults) register(addr, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[addr] = name
}

// cutAddr is Cut for a peer known by its gossip address (and name, when the
// caller has it).
func (f *Faults) cutAddr(from string, to memberlist.Address) bool {
	if f == nil {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	name := to.Name
	if name == "" {
		name = f.names[to.Addr]
	}
	return f.cut[[2]string{from, name}]
}

// faultTransport is memberlist's NetTransport with the Faults filter in
// front. With nil faults it filters nothing.
type faultTransport struct {
	*memberlist.NetTransport
	name    string
	faults  *Faults
	packets chan *memberlist.Packet
	done    chan struct{}
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

func newFaultTransport(nt *memberlist.NetTransport, name string, f *Faults) *faultTransport {
	t := &faultTransport{
		NetTransport: nt, name: name, faults: f,
		packets: make(chan *memberlist.Packet),
		done:    make(chan struct{}),
	}
	go t.filterPackets()
	return t
}

// filterPackets forwards incoming packets except those from a cut peer.
func (t *faultTransport) filterPackets() {
	in := t.NetTransport.PacketCh()
	for {
		select {
		case p := <-in:
			if t.faults.cutAddr(t.name, memberlist.Address{Addr: p.From.String()}) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *faultTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.faults.cutAddr(t.name, addr) {
		return time.Now(), nil // lost on the way, as UDP may be
	}
	return t.NetTransport.WriteToAddress(b, addr)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *faultTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.faults.cutAddr(t.name, addr) {
		return nil, fmt.Errorf("dial %s: %w", addr.String(), ErrPartitioned)
	}
	return t.NetTransport.DialAddressTimeout(addr, timeout)
}

func (t *faultTransport) Shutdown() error {
	err := t.NetTransport.Shutdown()
	close(t.done)
	return err
}
