package httpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// Cache is what the /cache routes need from the node. *cluster.Node
// implements it.
type Cache interface {
	// Put stamps and stores a write and returns the entry as stored.
	Put(ctx context.Context, w cluster.Write) (engine.Entry, error)
	// Delete writes a tombstone for key (on this node only with local).
	Delete(ctx context.Context, key string, local bool) (engine.Entry, error)
	// Get returns the visible (not deleted, not expired) entry of key.
	Get(key string) (engine.Entry, bool)
	// List returns up to limit visible keys starting with prefix that sort
	// after after, in byte order, and the key to continue after ("" when done).
	List(prefix, after string, limit int) ([]string, string)
}

// Members lists the cluster for GET /cluster/members. *cluster.Node
// implements it.
type Members interface {
	Members() []cluster.Member
}

// Defaults of Config.
const (
	DefaultMaxKeyBytes   = 1024
	DefaultMaxValueBytes = 1 << 20
)

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	// Cache serves the /cache routes. Required.
	Cache Cache
	// Members serves GET /cluster/members. Default nil: the route answers
	// an empty list.
	Members Members
	// Blobs serves the /blob routes. Default nil: there are no /blob routes
	// and they answer 404.
	Blobs Blobs
	// Peers serves the node-to-node sync routes under
	// cluster.SyncPathPrefix (*cluster.Node's Handler). Default nil: those
	// routes answer 404.
	Peers http.Handler
	// VerifyPeer checks that a request to a node-to-node route (under
	// /internal/) was signed by a member holding the cluster key
	// (*cluster.Node's VerifyPeer); a request it refuses gets 401 and
	// reaches no handler. Default nil: those routes are open (a node
	// without a cluster key, on loopback or with --insecure).
	VerifyPeer func(*http.Request) error
	// MaxKeyBytes is the longest key accepted, in bytes. Default 1024.
	MaxKeyBytes int
	// MaxValueBytes is the largest cache value accepted, in bytes; a larger
	// one is answered with 413. Default 1 MiB.
	MaxValueBytes int64
	// Registerer receives the HTTP metrics. Default: Gatherer when that is
	// also a Registerer (a *prometheus.Registry is both); with both unset, a
	// new registry of the server's own.
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics exposes. Default: Registerer when that
	// is also a Gatherer; with both unset, the server's own registry.
	Gatherer prometheus.Gatherer
	// Ready reports whether the node is ready (recovered and, when it
	// joins a cluster, in sync with a peer) and why or why not; GET /readyz
	// answers 503 with the reason until it returns true, then 200 with it.
	// Default: always ready.
	Ready func() (bool, string)
	// Logger receives a Debug line per request and a line per server-side
	// failure. Default: discard.
	Logger *slog.Logger
	// Now is the clock that turns a time-to-live into an absolute expiry.
	// Default time.Now.
	Now func() time.Time

	// Tokens are the client tokens (NewTokens). Default nil: no client
	// authentication, every route is open to whoever reaches the port.
	// With tokens, every route needs one of a large enough scope except
	// /healthz, /readyz, the node-to-node routes under /internal/ (their
	// own middleware checks those) and, with MetricsPublic, /metrics.
	Tokens *Tokens
	// MetricsPublic serves /metrics without a token. Default false: it
	// needs an admin token when there are tokens.
	MetricsPublic bool
	// BodyIdleTimeout cuts a request whose body moves no byte for this
	// long (400 when the answer can still be sent). Default 30s.
	BodyIdleTimeout time.Duration
	// MaxBodyMemory bounds the bytes of request bodies buffered at once
	// over every connection (cache values being received); a request that
	// would pass it answers 503 with Retry-After. Default 256 MiB.
	MaxBodyMemory int64
	// MaxBlobTransfers bounds the blob streams served at once: uploads and
	// downloads on /blob and shard transfers between nodes; the next one
	// answers 503 with Retry-After. Manifest reads, HEAD, DELETE and the
	// shard routes' small requests are not counted. Default 0: no bound.
	MaxBlobTransfers int
	// RateLimit is the requests per second each client may make: a client
	// is a token's name when the request carries a valid token, else its
	// IP address (IPv6: its /64). Beyond it requests answer 429 with
	// Retry-After. /healthz, /readyz and /internal/ are not counted.
	// Default 0: no limit.
	RateLimit float64
	// RateBurst is how many requests a client may make at once above the
	// rate. Default: one second's worth (RateLimit rounded up), at least 1.
	RateBurst int
	// MaxRateClients bounds the clients the rate limiter tracks at once;
	// beyond it, new clients share one bucket until idle ones are dropped.
	// Default DefaultMaxRateClients.
	MaxRateClients int
}

// DefaultConfig returns a Config with every default filled in except Cache.
func DefaultConfig() Config {
	return Config{
		MaxKeyBytes:     DefaultMaxKeyBytes,
		MaxValueBytes:   DefaultMaxValueBytes,
		Ready:           func() (bool, string) { return true, "always ready" },
		Logger:          slog.New(slog.DiscardHandler),
		Now:             time.Now,
		BodyIdleTimeout: DefaultBodyIdleTimeout,
		MaxBodyMemory:   DefaultMaxBodyMemory,
		MaxRateClients:  DefaultMaxRateClients,
	}
}

// Validate checks the fields on their own and against each other.
func (c Config) Validate() error {
	if c.Cache == nil {
		return errors.New("httpd: Config.Cache is required")
	}
	if c.MaxKeyBytes < 0 {
		return fmt.Errorf("httpd: MaxKeyBytes %d is negative", c.MaxKeyBytes)
	}
	if c.MaxValueBytes < 0 {
		return fmt.Errorf("httpd: MaxValueBytes %d is negative", c.MaxValueBytes)
	}
	switch {
	case c.BodyIdleTimeout < 0:
		return fmt.Errorf("httpd: BodyIdleTimeout %s is negative", c.BodyIdleTimeout)
	case c.MaxBodyMemory < 0:
		return fmt.Errorf("httpd: MaxBodyMemory %d is negative", c.MaxBodyMemory)
	case c.MaxBlobTransfers < 0:
		return fmt.Errorf("httpd: MaxBlobTransfers %d is negative", c.MaxBlobTransfers)
	case c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0):
		return fmt.Errorf("httpd: RateLimit %v is not a rate", c.RateLimit)
	case c.RateBurst < 0:
		return fmt.Errorf("httpd: RateBurst %d is negative", c.RateBurst)
	case c.MaxRateClients < 0:
		return fmt.Errorf("httpd: MaxRateClients %d is negative", c.MaxRateClients)
	}
	if c.Registerer != nil && c.Gatherer == nil {
		if _, ok := c.Registerer.(prometheus.Gatherer); !ok {
			return errors.New("httpd: Config.Registerer is set but is not a Gatherer; set Gatherer too")
		}
	}
	if c.Gatherer != nil && c.Registerer == nil {
		if _, ok := c.Gatherer.(prometheus.Registerer); !ok {
			return errors.New("httpd: Config.Gatherer is set but is not a Registerer; set Registerer too")
		}
	}
	return nil
}

// withDefaults returns c with its zero fields replaced by the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = d.MaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.Ready == nil {
		c.Ready = d.Ready
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.BodyIdleTimeout == 0 {
		c.BodyIdleTimeout = d.BodyIdleTimeout
	}
	if c.MaxBodyMemory == 0 {
		c.MaxBodyMemory = d.MaxBodyMemory
	}
	if c.RateBurst == 0 {
		c.RateBurst = defaultBurst(c.RateLimit)
	}
	if c.MaxRateClients == 0 {
		c.MaxRateClients = d.MaxRateClients
	}
	switch {
	case c.Registerer == nil && c.Gatherer == nil:
		reg := prometheus.NewRegistry()
		c.Registerer, c.Gatherer = reg, reg
	case c.Gatherer == nil:
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		}
	case c.Registerer == nil:
		if r, ok := c.Gatherer.(prometheus.Registerer); ok {
			c.Registerer = r
		}
	}
	return c
}
