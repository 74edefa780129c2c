package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
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

// holds reports whether the visible entry e (ok: there is one) meets p.
func (p Precondition) holds(e engine.Entry, ok bool) bool {
	switch {
	case p.Exists && !ok, p.Absent && ok:
		return false
	case !p.Match.IsZero() && (!ok || e.Version != p.Match):
		return false
	case !p.NotMatch.IsZero() && ok && e.Version == p.NotMatch:
		return false
	}
	return true
}

// writeStripes is how many locks serialise local writes by key hash.
const writeStripes = 4096

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

// joinTargets are cfg.Join and the remembered peers, this node excluded.
func (n *Node) joinTargets() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range append(append([]string{}, n.cfg.Join...), n.id.remembered()...) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// joinLoop joins the targets at start and, whenever the node has no live
// peer, again: every target is tried (left members included), with
// backoff from 200ms to 5s. A seed node's restart therefore never splits
// the cluster: it finds its peers whether or not it was given --join.
func (n *Node) joinLoop(initial []string) {
	defer n.wg.Done()
	if !n.waitStarted() {
		return
	}
	wait, warned := 200*time.Millisecond, false
	targets := initial
	for {
		if len(n.mem.live()) == 0 {
			targets = n.joinTargets()
		} else {
			targets, wait, warned = nil, 200*time.Millisecond, false
		}
		self := n.GossipAddr()
		targets = slicesDelete(targets, self)
		if len(targets) > 0 {
			got, err := n.ml.Join(targets)
			switch {
			case errors.Is(err, ErrNameTaken) || n.FatalErr() != nil:
				return
			case got > 0:
				n.log.Info("joined cluster", "contacted", got)
				wait, warned = 200*time.Millisecond, false
			case !warned && keyTrouble(err):
				n.log.Warn("peers refused this node's gossip: they use another cluster key, or none (check --cluster-key on every node); retrying",
					"peers", targets, "err", oneLine(err))
				warned = true
			case !warned:
				n.log.Warn("no peer answered; retrying in the background", "peers", targets, "err", oneLine(err))
				warned = true
			default:
				n.log.Debug("join failed", "peers", targets, "err", oneLine(err))
			}
		}
		select {
		case <-n.closed:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// rejoinDead tries to join one member held as dead: memberlist stops
// talking to a dead node, so without it two sides of a healed partition
// would stay apart.
func (n *Node) rejoinDead() {
	dead := n.mem.deadAddrs()
	if len(dead) == 0 {
		return
	}
	addr := dead[rand.IntN(len(dead))]
	if _, err := n.ml.Join([]string{addr}); err != nil {
		n.log.Debug("reconnect to dead member failed", "addr", addr, "err", oneLine(err))
	}
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
		n.mem.setLeaving()
		// Gossip the leaving flag first so peers record "left", not "dead".
		if err := n.ml.UpdateNode(n.cfg.LeaveTimeout); err != nil {
			n.log.Debug("announce leaving", "err", err)
		}
		if err := n.ml.Leave(n.cfg.LeaveTimeout); err != nil {
			n.log.Warn("leave", "err", oneLine(err))
		}
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

// Put stamps w with a new version, makes it durable on this node and, unless
// w.Local, queues it for every live peer. It returns the entry as stored;
// its version is above every version of the key this node held.
func (n *Node) Put(ctx context.Context, w Write) (engine.Entry, error) {
	e := engine.Entry{Key: w.Key, Local: w.Local, Deleted: w.Delete}
	if !w.Delete {
		e.Value, e.ContentType, e.ExpiresAt = w.Value, w.ContentType, w.ExpiresAt
	}
	return n.write(ctx, e, w.If)
}

// Delete writes a tombstone for key (node-local with local).
func (n *Node) Delete(ctx context.Context, key string, local bool) (engine.Entry, error) {
	return n.Put(ctx, Write{Key: key, Local: local, Delete: true})
}

// maxWriteTries bounds how often a local write is stamped again because a
// peer's newer version of the key arrived between stamping and applying.
const maxWriteTries = 8

// write checks the precondition, stamps the entry above the key's newest
// version and applies it, under the key's stripe lock so that concurrent
// local writes of one key are ordered; a peer's entry that lands in
// between makes it stamp again. A 200 therefore always means the write
// took effect on this node.
func (n *Node) write(ctx context.Context, e engine.Entry, cond Precondition) (engine.Entry, error) {
	if err := ctx.Err(); err != nil {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, err)
	}
	if n.isClosed() {
		return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, ErrClosed)
	}
	mu := &n.stripes[keyHash(e.Key)%writeStripes]
	mu.Lock()
	defer mu.Unlock()
	if cond != (Precondition{}) {
		cur, ok := n.store.Get(e.Key)
		if !cond.holds(cur, ok) {
			return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, ErrPrecondition)
		}
	}
	for try := 0; ; try++ {
		head, _ := n.store.Head(e.Key)
		v, ok := n.clock.After(head)
		if !ok {
			return engine.Entry{}, fmt.Errorf("cluster: write %q: the key holds the largest version there is", e.Key)
		}
		e.Version = v
		won, err := n.store.ApplyBatch([]engine.Entry{e})
		if err != nil {
			return engine.Entry{}, fmt.Errorf("cluster: write %q: %w", e.Key, err)
		}
		if won == 1 {
			break
		}
		if try == maxWriteTries {
			return engine.Entry{}, fmt.Errorf("cluster: write %q: newer versions kept arriving", e.Key)
		}
	}
	if !e.Local {
		n.rep.fanOut(e)
	}
	return e, nil
}

// Get returns the visible entry of key.
func (n *Node) Get(key string) (engine.Entry, bool) { return n.store.Get(key) }

// List lists visible keys as Store.List does.
func (n *Node) List(prefix, after string, limit int) ([]string, string) {
	return n.store.List(prefix, after, limit)
}

// applyRemote applies entries from a peer: each must have a key and a
// version within MaxClockSkew of this node's clock; the rest are refused,
// counted and logged.
func (n *Node) applyRemote(h header, ents []engine.Entry, repair bool) {
	if h.wallMS != 0 {
		n.notePeerClock(h)
	}
	n.metrics.entriesReceived.Add(float64(len(ents)))
	keep := ents[:0]
	for _, e := range ents {
		e.Local = false
		switch {
		case e.Key == "":
			n.reject(h.from, "bad_entry", "an entry without a key")
		case len(e.Key) > n.cfg.MaxKeyBytes || len(e.Value) > n.cfg.MaxValueBytes || len(e.ContentType) > maxContentTypeBytes:
			n.reject(h.from, "too_large", fmt.Sprintf("key %q of %d bytes with a value of %d bytes is over the limits",
				truncate(e.Key, 64), len(e.Key), len(e.Value)))
		case !n.clock.Admit(e.Version.Time):
			n.reject(h.from, "clock_skew", fmt.Sprintf("key %q has a version %v ahead of this node's clock (at most %v allowed)",
				truncate(e.Key, 64), n.clock.Ahead(e.Version.Time).Round(time.Millisecond), n.cfg.MaxClockSkew))
		default:
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return
	}
	won, err := n.store.ApplyBatch(keep)
	if err != nil {
		n.log.Error("applying entries from a peer", "peer", h.from, "entries", len(keep), "err", err)
		return
	}
	if repair {
		n.metrics.aeRepaired.Add(float64(won))
	}
	if f := n.onApplied.Load(); f != nil {
		(*f)(keep)
	}
}

// notePeerClock records how far a peer's clock is from this node's and
// names a peer beyond MaxClockSkew in a log line.
func (n *Node) notePeerClock(h header) {
	off := time.Duration(h.wallMS-n.cfg.Now().UnixMilli()) * time.Millisecond
	n.metrics.peerClock.WithLabelValues(h.from).Set(off.Seconds())
	if off > n.cfg.MaxClockSkew || -off > n.cfg.MaxClockSkew {
		if n.rejectLog.allow("skew/"+h.from, n.cfg.Now()) {
			n.log.Warn("a peer's clock is off by more than the allowed skew", "peer", h.from,
				"offset", off.Round(time.Millisecond).String(), "max_clock_skew", n.cfg.MaxClockSkew.String())
		}
	}
}

// reject counts an entry or message refused from a peer and logs it, at
// most once a minute per peer and reason.
func (n *Node) reject(peer, reason, what string) {
	n.metrics.rejected.WithLabelValues(reason).Inc()
	if n.rejectLog.allow(reason+"/"+peer, n.cfg.Now()) {
		n.log.Warn("refused from a peer", "peer", peer, "reason", reason, "detail", what)
	}
}

// fresh reports whether the node was in sync with the cluster within the
// last TombstoneTTL (see doc.go, "Tombstones").
func (n *Node) fresh() bool {
	t := n.id.lastSynced()
	return !t.IsZero() && n.cfg.Now().Sub(t) <= n.cfg.TombstoneTTL
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

// purge removes entries a stale node holds but the cluster no longer does:
// a tombstone just above each, older than the horizon, so the store
// collects it at once and a restart does not bring the entry back.
func (n *Node) purge(ents []engine.Entry) error {
	tombs := make([]engine.Entry, len(ents))
	for i, e := range ents {
		tombs[i] = engine.Entry{Key: e.Key, Deleted: true, Version: purgeVersion(e.Version)}
	}
	if _, err := n.store.ApplyBatch(tombs); err != nil {
		return fmt.Errorf("cluster: purge %d entries: %w", len(ents), err)
	}
	n.metrics.purged.Add(float64(len(ents)))
	return nil
}

// announce gossips the node's metadata again (its sync time changed).
func (n *Node) announce() {
	n.mem.noteGossiped(n.id.lastSynced())
	n.background(func() {
		if err := n.ml.UpdateNode(n.cfg.LeaveTimeout); err != nil {
			n.log.Debug("announce metadata", "err", err)
		}
	})
}

// maxContentTypeBytes bounds a content type received from a peer.
const maxContentTypeBytes = 256

// memberlistLog receives memberlist's log lines: debug lines of the node,
// except that a peer whose gossip this node cannot decrypt (another
// cluster key, or none) is named in one warning a minute.
type memberlistLog struct{ n *Node }

func (w *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if keyTroubleText(line) && w.n.rejectLog.allow("gossip-key", w.n.cfg.Now()) {
		w.n.metrics.rejected.WithLabelValues("gossip_key").Inc()
		w.n.log.Warn("gossip from a peer that does not hold this node's cluster key (another key, or none)", "detail", line)
		return len(p), nil
	}
	w.n.log.Debug(line)
	return len(p), nil
}

// keyTrouble reports whether err says the peers' gossip keys differ.
func keyTrouble(err error) bool { return err != nil && keyTroubleText(err.Error()) }

func keyTroubleText(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "decrypt") || strings.Contains(s, "not encrypted") || strings.Contains(s, "encryption is configured")
}

// rateLimit lets one event per key through per minute.
type rateLimit struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *rateLimit) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(r.last) > 1024 {
		clear(r.last)
	}
	r.last[key] = now
	return true
}

// oneLine is err's message on one line ("" for nil).
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\n' || c == '\r' || c == '\t' {
			b[i] = ' '
		}
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func slicesDelete(s []string, v string) []string {
	out := s[:0:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
