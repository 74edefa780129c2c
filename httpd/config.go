package httpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// DefaultConfig returns a Config with every default filled in except Cache.
func DefaultConfig() Config {
	return Config{
		MaxKeyBytes:   DefaultMaxKeyBytes,
		MaxValueBytes: DefaultMaxValueBytes,
		Ready:         func() (bool, string) { return true, "always ready" },
		Logger:        slog.New(slog.DiscardHandler),
		Now:           time.Now,
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
