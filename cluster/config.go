package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the cluster package. They come wrapped with context;
// test them with errors.Is.
var (
	// ErrConfig: a Config field is missing or out of range.
	ErrConfig = errors.New("cluster: bad config")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("cluster: node closed")
	// ErrMessage: a message from a peer could not be decoded.
	ErrMessage = errors.New("cluster: bad message")
	// ErrPartitioned: the fault seam cut the link to the peer.
	ErrPartitioned = errors.New("cluster: link cut by fault injection")
	// ErrPrecondition: a conditional write's precondition (Write.If) did
	// not hold on this node; nothing was written.
	ErrPrecondition = errors.New("cluster: precondition failed")
	// ErrNameTaken: another live member already uses this node's name.
	ErrNameTaken = errors.New("cluster: node name already in use")
)

// Config configures a Node. Zero fields take the defaults named; see
// DefaultConfig.
type Config struct {
	// Name is the node's unique name in the cluster. Its 64-bit hash is the
	// node id in every version the node stamps, so a node keeps its name
	// across restarts. Required.
	Name string

	// Dir is where the node keeps what must outlive a restart: its id (the
	// tie-break in every version it stamps), the peers it has seen (joined
	// again at start, so a restart never depends on --join) and when it was
	// last in sync with the cluster. Default "": nothing is kept, every
	// start is a new node (tests).
	Dir string

	// BindAddr is the address the gossip listeners (TCP and UDP) bind to.
	// Default 127.0.0.1. Use 0.0.0.0 for a real cluster.
	BindAddr string

	// AdvertiseAddr is the address peers use to reach this node. Default:
	// BindAddr; when BindAddr is 0.0.0.0 (or ::), the first private or
	// loopback address of this machine.
	AdvertiseAddr string

	// GossipPort is the gossip port (TCP and UDP). DefaultConfig sets 7946;
	// 0 asks the kernel for a free port (tests), which Node.GossipPort
	// then reports.
	GossipPort int

	// HTTPAddr is the host:port of this node's HTTP API, advertised to peers
	// in the node metadata, or https://host:port when the API is served
	// over TLS: peers then sync with it over TLS (see PeerTLS). Default:
	// empty (not advertised).
	HTTPAddr string

	// PeerTLS is the TLS client configuration for requests to peers whose
	// HTTPAddr is https://. Default nil: Go's defaults (the system's roots).
	PeerTLS *tls.Config

	// Join lists host:port gossip addresses of existing members. They are
	// tried in the background with backoff (500ms doubling to 30s) until one
	// join succeeds; starting never blocks on them. Default: none.
	Join []string

	// GossipInterval is memberlist's gossip interval. Default (0):
	// memberlist's LAN default (200ms).
	GossipInterval time.Duration

	// GossipNodes is how many nodes each gossip round reaches. Default (0):
	// memberlist's LAN default (3).
	GossipNodes int

	// ProbeInterval is memberlist's failure-detector probe interval.
	// Default (0): memberlist's LAN default (1s).
	ProbeInterval time.Duration

	// ProbeTimeout is how long a probe waits for an ack. Default (0):
	// memberlist's LAN default (500ms).
	ProbeTimeout time.Duration

	// TombstoneTTL must equal the engine's TombstoneTTL: a replicated entry
	// whose version is older than now-TombstoneTTL is dropped on receipt
	// unless the receiver holds a value for its key (see doc.go). Default
	// 24h.
	TombstoneTTL time.Duration

	// ReplicationQueue is the most entries queued for one peer; writes that
	// find the queue full are dropped for that peer and counted
	// (anti-entropy repairs them). Default 65536.
	ReplicationQueue int

	// RecentBytes bounds the memory of this node's own writes of the last
	// few seconds (their keys and versions), kept to send again to a peer
	// that turns alive (see recentWindow). Default 1 MiB, about 16,000
	// writes; a node that took more in the window has the syncer repair a
	// peer that turns alive instead. A node with a memory bound gives it a
	// share of that bound.
	RecentBytes int

	// BatchBytes caps the encoded size of one replication batch.
	// Default 256 KiB.
	BatchBytes int

	// BatchDelay is how long a peer's sender lets a small queue grow
	// before it sends: fewer, larger batches cost the peer fewer log
	// commits. It adds at most this much to replication lag. Default 10ms;
	// negative: send at once.
	BatchDelay time.Duration

	// AntiEntropyInterval is memberlist's push/pull interval: how often
	// this node swaps bucket digests with a random peer. Default 30s
	// (memberlist's LAN default). Tests set it short.
	AntiEntropyInterval time.Duration

	// AntiEntropyMaxBytes caps the entry bytes one anti-entropy exchange
	// sends to one peer, so a round stays cheap while writes are in flight
	// (then most buckets differ for a moment). Buckets left out are found
	// again by a later round. Default 16 MiB.
	AntiEntropyMaxBytes int

	// ReconnectTimeout is how long a dead member is retried (every
	// AntiEntropyInterval, so a healed partition closes) and how long dead
	// and left members stay listed by Members. Default 24h.
	ReconnectTimeout time.Duration

	// Keys are the cluster keys (see ParseKeys), the first one primary:
	// they encrypt and authenticate gossip (memberlist's keyring) and sign
	// node-to-node HTTP requests. Default none: gossip is plain and
	// node-to-node routes are open (loopback or --insecure only).
	Keys [][]byte

	// MaxKeyBytes and MaxValueBytes bound what a peer may send, like a
	// client's write. Defaults 1024 and 1 MiB.
	MaxKeyBytes   int
	MaxValueBytes int

	// MaxClockSkew bounds how far ahead of this node's clock a version
	// received from a peer may be; entries beyond it are refused, counted
	// and logged, never applied. Default 1m.
	MaxClockSkew time.Duration

	// ReadySyncTimeout is how long Readiness waits for the first sync with
	// a live peer when the node joins an existing cluster. Default 10s.
	ReadySyncTimeout time.Duration

	// LeaveTimeout bounds how long Close waits for the leave message to be
	// gossiped. Default 2s.
	LeaveTimeout time.Duration

	// Logger receives the node's lines; memberlist's own log is sent to it
	// at debug level. Default: discard.
	Logger *slog.Logger

	// Registerer, if set, receives the node's metrics.
	Registerer prometheus.Registerer

	// Faults, if set, lets tests cut the network between groups of nodes:
	// gossip, push/pull and replication to or from a cut peer are dropped.
	// Every node of one test shares the same Faults. Default: nil (no
	// faults).
	Faults *Faults

	// Now is the wall clock of the hybrid logical clock and of the
	// tombstone rule. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in except Name.
func DefaultConfig() Config {
	return Config{
		BindAddr:            "127.0.0.1",
		GossipPort:          7946,
		TombstoneTTL:        24 * time.Hour,
		ReplicationQueue:    65536,
		RecentBytes:         1 << 20,
		BatchBytes:          256 << 10,
		BatchDelay:          10 * time.Millisecond,
		AntiEntropyInterval: 30 * time.Second,
		AntiEntropyMaxBytes: 16 << 20,
		ReconnectTimeout:    24 * time.Hour,
		LeaveTimeout:        2 * time.Second,
		MaxClockSkew:        time.Minute,
		MaxKeyBytes:         1024,
		MaxValueBytes:       1 << 20,
		ReadySyncTimeout:    10 * time.Second,
		Now:                 time.Now,
	}
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BindAddr == "" {
		c.BindAddr = d.BindAddr
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = d.TombstoneTTL
	}
	if c.ReplicationQueue == 0 {
		c.ReplicationQueue = d.ReplicationQueue
	}
	if c.RecentBytes == 0 {
		c.RecentBytes = d.RecentBytes
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.BatchDelay == 0 {
		c.BatchDelay = d.BatchDelay
	}
	if c.AntiEntropyInterval == 0 {
		c.AntiEntropyInterval = d.AntiEntropyInterval
	}
	if c.AntiEntropyMaxBytes == 0 {
		c.AntiEntropyMaxBytes = d.AntiEntropyMaxBytes
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = d.ReconnectTimeout
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = d.LeaveTimeout
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = d.MaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = d.MaxClockSkew
	}
	if c.ReadySyncTimeout == 0 {
		c.ReadySyncTimeout = d.ReadySyncTimeout
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks c (after defaults) and reports the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	switch {
	case c.Name == "":
		return bad("Name is required")
	case net.ParseIP(c.BindAddr) == nil:
		return bad("BindAddr %q is not an IP address", c.BindAddr)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil:
		return bad("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	case c.GossipPort < 0 || c.GossipPort > 65535:
		return bad("GossipPort %d out of range", c.GossipPort)
	case c.GossipInterval < 0, c.ProbeInterval < 0, c.ProbeTimeout < 0:
		return bad("negative gossip or probe interval")
	case c.ProbeInterval > 0 && c.ProbeTimeout > c.ProbeInterval:
		return bad("ProbeTimeout %v exceeds ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	case c.GossipNodes < 0:
		return bad("GossipNodes %d is negative", c.GossipNodes)
	case c.TombstoneTTL < 0:
		return bad("TombstoneTTL %v is negative", c.TombstoneTTL)
	case c.ReplicationQueue < 0:
		return bad("ReplicationQueue %d is negative", c.ReplicationQueue)
	case c.BatchBytes < 1024:
		return bad("BatchBytes %d is below 1024", c.BatchBytes)
	case c.AntiEntropyInterval < 0:
		return bad("AntiEntropyInterval %v is negative", c.AntiEntropyInterval)
	case c.AntiEntropyMaxBytes < 0:
		return bad("AntiEntropyMaxBytes %d is negative", c.AntiEntropyMaxBytes)
	case c.ReconnectTimeout < 0:
		return bad("ReconnectTimeout %v is negative", c.ReconnectTimeout)
	case c.LeaveTimeout < 0:
		return bad("LeaveTimeout %v is negative", c.LeaveTimeout)
	case c.MaxKeyBytes < 0 || c.MaxValueBytes < 0:
		return bad("negative MaxKeyBytes or MaxValueBytes")
	case c.MaxClockSkew < 0:
		return bad("MaxClockSkew %v is negative", c.MaxClockSkew)
	case c.ReadySyncTimeout < 0:
		return bad("ReadySyncTimeout %v is negative", c.ReadySyncTimeout)
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(c.HTTPAddr, "https://")); err != nil {
			return bad("HTTPAddr %q: %v", c.HTTPAddr, err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return bad("Join address %q: %v", j, err)
		}
	}
	return nil
}

// advertiseAddr resolves the address peers use to reach this node.
func (c Config) advertiseAddr() (string, error) {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr, nil
	}
	ip := net.ParseIP(c.BindAddr)
	if !ip.IsUnspecified() {
		return c.BindAddr, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("%w: list interface addresses: %v", ErrConfig, err)
	}
	var loopback string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ipn.IP.IsPrivate() {
			return ipn.IP.String(), nil
		}
		if ipn.IP.IsLoopback() && loopback == "" {
			loopback = ipn.IP.String()
		}
	}
	if loopback != "" {
		return loopback, nil
	}
	return "", fmt.Errorf("%w: no private or loopback address to advertise; set AdvertiseAddr", ErrConfig)
}
