package cluster

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/disperse/disperse/engine"
	"github.com/hashicorp/memberlist"
)

// Node is one cluster member. It is made of parts with a lock each:
// membership (who is there), the replicator (fan-out of writes), the
// syncer (catch-up and anti-entropy) and the clock; Node itself holds the
// write path and the lifecycle.
type Node struct {
	cfg     Config
	store   Store
	clock   *Clock
	id      *identity
	log     *slog.Logger
	ml      *memberlist.Memberlist
	trans   *faultTransport
	metrics *metrics
	port    int
	addr    string // the advertised gossip host:port

	mem  *membership
	rep  *replicator
	sync *syncer
	auth *peerAuth

	stripes [writeStripes]sync.Mutex

	// onApplied, if set, sees every batch received from a peer after it is
	// applied (benchmarks measure replication lag with it).
	onApplied atomic.Pointer[func([]engine.Entry)]

	rejectLog rateLimit

	fatal    chan struct{}
	fatalErr atomic.Pointer[error]

	bgMu      sync.RWMutex  // orders background starts against close
	metaMu    sync.Mutex    // orders metadata announcements against the leave
	started   chan struct{} // closed once ml is set
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// New starts memberlist on cfg's address and returns the running node.
// Joining (cfg.Join and the peers remembered in cfg.Dir) happens in the
// background. store must be open; it stays the caller's to close, after
// Close. Serve Handler on cfg.HTTPAddr so peers can sync with the node.
func New(cfg Config, store Store) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	adv, err := cfg.advertiseAddr()
	if err != nil {
		return nil, err
	}
	id, err := loadIdentity(cfg.Dir)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		store:   store,
		id:      id,
		clock:   NewClock(id.id, cfg.Now, cfg.MaxClockSkew),
		log:     cfg.Logger.With("node", cfg.Name),
		started: make(chan struct{}),
		closed:  make(chan struct{}),
		fatal:   make(chan struct{}),
	}
	n.clock.Seed(store.MaxVersion().Time)
	if n.auth, err = newPeerAuth(cfg.Name, cfg.MaxClockSkew, cfg.Now, cfg.Keys); err != nil {
		return nil, err
	}
	n.mem = newMembership(n, id)
	n.rep = newReplicator(n)
	targets := n.joinTargets()
	n.sync = newSyncer(n, len(targets) > 0)
	if len(targets) == 0 && id.lastSynced().IsZero() {
		id.markSynced(cfg.Now()) // a new cluster of one: it is the cluster
	}
	n.mem.onAlive = func(mn memberlist.Node, joined bool) {
		n.rep.start(mn)
		if joined {
			n.sync.peerJoined(mn.Name)
		}
	}
	n.mem.onGone = func(name string) {
		n.rep.stop(name)
		n.metrics.peerClock.DeleteLabelValues(name)
	}
	n.metrics = newMetrics(n)
	if err := n.metrics.register(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("%w: register metrics: %v", ErrConfig, err)
	}
	if err := n.startMemberlist(adv); err != nil {
		n.metrics.unregister(cfg.Registerer)
		return nil, err
	}
	n.wg.Add(2)
	go n.joinLoop(targets)
	go n.sync.loop()
	n.log.Info("cluster node started", "gossip", net.JoinHostPort(adv, strconv.Itoa(n.port)),
		"http", cfg.HTTPAddr, "id", strconv.FormatUint(id.id, 16), "in_sync", n.fresh())
	return n, nil
}

// startMemberlist opens the transport and creates the memberlist.
func (n *Node) startMemberlist(adv string) error {
	cfg := n.cfg
	mlLog := log.New(&memberlistLog{n: n}, "", 0)
	nt, err := newNetTransport(cfg.BindAddr, cfg.GossipPort, mlLog)
	if err != nil {
		return err
	}
	n.port = nt.GetAutoBindPort()
	n.addr = net.JoinHostPort(adv, strconv.Itoa(n.port))
	n.trans = newFaultTransport(nt, cfg.Name, cfg.Faults)

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = n.port
	mc.AdvertiseAddr = adv
	mc.AdvertisePort = n.port
	mc.Transport = n.trans
	mc.Logger = mlLog
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n.mem)
	mc.Merge = (*events)(n.mem)
	mc.Ping = (*events)(n.mem)
	mc.EnableCompression = false
	if n.auth.ring != nil {
		mc.Keyring = n.auth.ring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
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
		n.bgMu.Lock()
		close(n.closed) // stops whatever a peer's early contact started
		n.bgMu.Unlock()
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

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// ID is the node's id, the tie-break in the versions it stamps.
func (n *Node) ID() uint64 { return n.id.id }

// GossipPort is the port the gossip listeners bound.
func (n *Node) GossipPort() int { return n.port }

// GossipAddr is the host:port peers join this node on.
func (n *Node) GossipAddr() string { return n.addr }

// Clock is the node's hybrid logical clock.
func (n *Node) Clock() *Clock { return n.clock }

// Members lists every node this node has heard of, itself included,
// sorted by name: alive, suspect (alive, but this node's probes of it have
// gone unanswered for a while), left (announced its leave) or dead.
func (n *Node) Members() []Member { return n.mem.list() }

// Join contacts the given gossip addresses now and reports how many
// answered.
func (n *Node) Join(addrs ...string) (int, error) {
	got, err := n.ml.Join(addrs)
	if err != nil && got == 0 {
		return 0, fmt.Errorf("cluster: join %v: %w", addrs, err)
	}
	return got, nil
}

// Readiness reports whether the node may be called ready and why: a node
// that joins an existing cluster is ready once its first sync with a live
// peer finished, or once Config.ReadySyncTimeout passed.
func (n *Node) Readiness() (bool, string) { return n.sync.readiness() }

// Fatal is closed when the node cannot go on (another live member uses
// its name); FatalErr says why.
func (n *Node) Fatal() <-chan struct{} { return n.fatal }

// FatalErr is the reason Fatal closed, nil before.
func (n *Node) FatalErr() error {
	if p := n.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records a fatal error once and closes Fatal.
func (n *Node) fail(err error) {
	if n.fatalErr.CompareAndSwap(nil, &err) {
		n.log.Error("cannot stay in the cluster", "err", err)
		close(n.fatal)
	}
}

// Close leaves the cluster (peers see the node as left), stops the
// senders (entries still queued are left to the sync) and shuts memberlist
// down. It does not close the store.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.metaMu.Lock() // no announce in flight, none after
		n.mem.setLeaving()
		// Gossip the leaving flag first so peers record "left", not "dead".
		if err := n.ml.UpdateNode(n.cfg.LeaveTimeout); err != nil {
			n.log.Debug("announce leaving", "err", err)
		}
		if err := n.ml.Leave(n.cfg.LeaveTimeout); err != nil {
			n.log.Warn("leave", "err", oneLine(err))
		}
		n.metaMu.Unlock()
		n.bgMu.Lock()
		close(n.closed) // no background task starts after this
		n.bgMu.Unlock()
		n.rep.close()
		n.closeErr = n.ml.Shutdown()
		n.wg.Wait()
		if n.fresh() {
			n.id.markSynced(n.cfg.Now())
		}
		if err := n.id.save(0); err != nil {
			n.closeErr = errors.Join(n.closeErr, err)
		}
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

// background runs f on its own goroutine unless the node is closing.
func (n *Node) background(f func()) {
	n.bgMu.RLock()
	defer n.bgMu.RUnlock()
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

// announce gossips the node's metadata again (its sync time or joining
// state changed). Never once the node leaves: an alive message after the
// leave would outrank it, and peers would see the node fail rather than
// leave.
func (n *Node) announce() {
	n.mem.noteGossiped(n.id.lastSynced())
	n.background(func() {
		n.metaMu.Lock()
		defer n.metaMu.Unlock()
		if n.mem.isLeaving() {
			return
		}
		if err := n.ml.UpdateNode(n.cfg.LeaveTimeout); err != nil {
			n.log.Debug("announce metadata", "err", err)
		}
	})
}
