package cluster

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/hashicorp/memberlist"
)

// Write is a client's write of one key, before the node stamps its version.
type Write struct {
	Key         string
	Value       []byte
	ContentType string
	// ExpiresAt is the absolute expiry in Unix nanoseconds; 0 means never.
	ExpiresAt int64
	// Local: apply on this node only (X-Is-Sync); never sent to peers.
	Local bool
	// Delete makes the write a tombstone: Value, ContentType and ExpiresAt
	// are ignored.
	Delete bool
	// If makes the write conditional on what this node holds for Key; it
	// is checked and the write applied atomically (ErrPrecondition).
	If Precondition
}

// Precondition is what a conditional write requires of the key's visible
// entry on the node that takes the write (HTTP If-Match / If-None-Match,
// Redis NX/XX, a manifest's compare-and-set). The zero value requires
// nothing.
type Precondition struct {
	// Match, when not zero: the visible entry has exactly this version.
	Match engine.Version
	// NotMatch, when not zero: the visible entry, if any, has another version.
	NotMatch engine.Version
	// Exists: the key has a visible entry.
	Exists bool
	// Absent: the key has no visible entry (absent, deleted or expired).
	Absent bool
}

// Node is one cluster member: it stamps writes with its hybrid logical
// clock, applies them to its engine and spreads them to its peers.
type Node struct {
	cfg     Config
	eng     *engine.Engine
	clock   *Clock
	log     *slog.Logger
	ml      *memberlist.Memberlist
	trans   *faultTransport
	metrics *metrics
	port    int

	mu      sync.RWMutex
	members map[string]*member // every node heard of, this one included
	peers   map[string]*peer   // live peers, each with its sender
	leaving bool

	recent recentSends // anti-entropy sends, to skip repeats

	// onApplied, if set, sees every replicated batch after it is applied
	// (benchmarks measure replication lag with it).
	onApplied atomic.Pointer[func([]engine.Entry)]

	fatal    chan struct{}
	fatalErr atomic.Pointer[error]

	started   chan struct{} // closed once ml is set
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// New starts memberlist on cfg's address and returns the running node.
// Joining cfg.Join happens in the background. eng must be open; it stays
// the caller's to close, after Close.
func New(cfg Config, eng *engine.Engine) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	adv, err := cfg.advertiseAddr()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		eng:     eng,
		clock:   NewClock(cfg.Name, cfg.Now),
		log:     cfg.Logger.With("node", cfg.Name),
		members: map[string]*member{},
		peers:   map[string]*peer{},
		started: make(chan struct{}),
		closed:  make(chan struct{}),
		fatal:   make(chan struct{}),
	}
	n.recent.window = min(cfg.AntiEntropyInterval/2, 2*time.Second)
	n.metrics = newMetrics(n)
	if err := n.metrics.register(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("%w: register metrics: %v", ErrConfig, err)
	}
	if err := n.startMemberlist(adv); err != nil {
		n.metrics.unregister(cfg.Registerer)
		return nil, err
	}
	if len(cfg.Join) > 0 {
		n.wg.Add(1)
		go n.joinLoop()
	}
	n.wg.Add(1)
	go n.reconnectLoop()
	n.log.Info("cluster node started", "gossip", net.JoinHostPort(adv, strconv.Itoa(n.port)), "http", cfg.HTTPAddr)
	return n, nil
}

// startMemberlist opens the transport and creates the memberlist.
func (n *Node) startMemberlist(adv string) error {
	cfg := n.cfg
	mlLog := slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)
	nt, err := newNetTransport(cfg.BindAddr, cfg.GossipPort, mlLog)
	if err != nil {
		return err
	}
	n.port = nt.GetAutoBindPort()
	n.trans = newFaultTransport(nt, cfg.Name, cfg.Faults, n.observePacket)

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = n.port
	mc.AdvertiseAddr = adv
	mc.AdvertisePort = n.port
	mc.Transport = n.trans
	mc.Logger = mlLog
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.EnableCompression = false
	mc.PushPullInterval = cfg.AntiEntropyInterval
	if cfg.GossipInterval > 0 {
		mc.GossipInterval = cfg.GossipInterval
	}
	if cfg.GossipNodes > 0 {
		mc.GossipNodes = cfg.GossipNodes
	}
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	if cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.ProbeTimeout
	}
	if cfg.Faults != nil {
		cfg.Faults.register(net.JoinHostPort(adv, strconv.Itoa(n.port)), cfg.Name)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		n.mu.Lock()
		close(n.closed) // stops whatever a peer's early contact started
		n.mu.Unlock()
		n.wg.Wait()
		_ = n.trans.Shutdown()
		return fmt.Errorf("cluster: start memberlist on %s:%d: %w", cfg.BindAddr, n.port, err)
	}
	n.ml = ml
	close(n.started)
	return nil
}

// waitStarted waits until memberlist is up; false if the node closed.
func (n *Node) waitStarted() bool {
	select {
	case <-n.started:
		return true
	case <-n.closed:
		return false
	}
}

// newNetTransport binds the gossip listeners; port 0 picks a free port,
// retried because TCP and UDP must get the same one.
func newNetTransport(bind string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{bind},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return nt, nil
		}
	}
	return nil, fmt.Errorf("cluster: bind gossip port %s:%d: %w", bind, port, err)
}

// joinLoop tries cfg.Join until one join succeeds or the node closes.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	wait := 500 * time.Millisecond
	for {
		got, err := n.ml.Join(n.cfg.Join)
		if got > 0 {
			n.log.Info("joined cluster", "contacted", got)
			return
		}
		n.log.Warn("join failed, retrying", "peers", n.cfg.Join, "in", wait, "err", err)
		select {
		case <-n.closed:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// reconnectLoop tries, every AntiEntropyInterval, to join one member
// marked dead (for up to ReconnectTimeout). memberlist stops talking to a dead node, so without it two
// sides of a healed partition would stay apart; a node that left is not
// retried.
func (n *Node) reconnectLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.AntiEntropyInterval)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
		n.forgetGone()
		var dead []string
		n.mu.RLock()
		for _, m := range n.members {
			if m.state == StateDead {
				dead = append(dead, m.node.Address())
			}
		}
		n.mu.RUnlock()
		if len(dead) == 0 {
			continue
		}
		addr := dead[rand.IntN(len(dead))]
		if _, err := n.ml.Join([]string{addr}); err != nil {
			n.log.Debug("reconnect to dead member failed", "addr", addr, "err", err)
		}
	}
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// GossipPort is the port the gossip listeners bound.
func (n *Node) GossipPort() int { return n.port }

// GossipAddr is the host:port peers join this node on.
func (n *Node) GossipAddr() string {
	return n.ml.LocalNode().Address()
}

// Clock is the node's hybrid logical clock.
func (n *Node) Clock() *Clock { return n.clock }

// Join contacts the given gossip addresses now and reports how many
// answered.
func (n *Node) Join(addrs ...string) (int, error) {
	got, err := n.ml.Join(addrs)
	if err != nil && got == 0 {
		return 0, fmt.Errorf("cluster: join %v: %w", addrs, err)
	}
	return got, nil
}

// Close leaves the cluster (peers see the node as left), stops the
// senders (entries still queued are left to anti-entropy) and shuts
// memberlist down. It does not close the engine.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.leaving = true
		n.mu.Unlock()
		// Gossip the leaving flag first so peers record "left", not "dead".
		if err := n.ml.UpdateNode(n.cfg.LeaveTimeout); err != nil {
			n.log.Debug("announce leaving", "err", err)
		}
		if err := n.ml.Leave(n.cfg.LeaveTimeout); err != nil {
			n.log.Warn("leave", "err", err)
		}
		n.mu.Lock()
		close(n.closed) // under mu: no sender or task starts after this
		n.mu.Unlock()
		n.stopPeers()
		n.closeErr = n.ml.Shutdown()
		n.wg.Wait()
		n.metrics.unregister(n.cfg.Registerer)
		n.log.Info("cluster node stopped")
	})
	return n.closeErr
}

func (n *Node) isClosed() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}

// Put stamps w with a new version, makes it durable on this node and, unless
// w.Local, queues it for every live peer. It returns the entry as stored.
func (n *Node) Put(ctx context.Context, w Write) (engine.Entry, error) {
	return n.write(ctx, engine.Entry{
		Key:         w.Key,
		Value:       w.Value,
		ContentType: w.ContentType,
		ExpiresAt:   w.ExpiresAt,
		Local:       w.Local,
	})
}

// Delete writes a tombstone for key (node-local with local).
func (n *Node) Delete(ctx context.Context, key string, local bool) (engine.Entry, error) {
	return n.write(ctx, engine.Entry{Key: key, Deleted: true, Local: local})
}

// write stamps, applies and queues one entry.
func (n *Node) write(ctx context.Context, e engine.Entry) (engine.Entry, error) {
	if err := ctx.Err(); err != nil {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, err)
	}
	if n.isClosed() {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, ErrClosed)
	}
	e.Version = n.clock.Version()
	if _, err := n.eng.Apply(e); err != nil {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, err)
	}
	if !e.Local {
		n.fanOut(e)
	}
	return e, nil
}

// Get returns the visible entry of key.
func (n *Node) Get(key string) (engine.Entry, bool) {
	return n.eng.Get(key)
}

// List lists visible keys as engine.Engine.List does.
func (n *Node) List(prefix, after string, limit int) ([]string, string) {
	return n.eng.List(prefix, after, limit)
}

// Readiness reports whether the node may be called ready and why: a node
// that joins an existing cluster is ready once its first sync with a live
// peer finished, or once Config.ReadySyncTimeout passed.
func (n *Node) Readiness() (bool, string) {
	return true, "no peers to sync with"
}

// Fatal is closed, after its error is stored in FatalErr, when the node
// cannot go on (its name is taken by another live member).
func (n *Node) Fatal() <-chan struct{} { return n.fatal }

// FatalErr is the reason Fatal closed, nil before.
func (n *Node) FatalErr() error {
	if p := n.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}
