package resp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the resp package.
var (
	// ErrConfig: a Config field is out of range.
	ErrConfig = errors.New("resp: bad config")
	// ErrClosed: the server was closed.
	ErrClosed = errors.New("resp: server closed")
)

// Scopes a token may have (Config.Authenticate). Each includes the ones
// before it.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	// MaxKeyBytes is the longest key accepted, as the REST API's
	// --max-key-bytes. Default 1024.
	MaxKeyBytes int

	// MaxValueBytes is the largest value accepted, as the REST API's
	// --max-value-bytes. A bulk string longer than this (or than
	// MaxKeyBytes, if larger) is a protocol error that closes the
	// connection. Default 1 MiB.
	MaxValueBytes int64

	// MaxCommandBytes bounds one request: its bulk strings plus 32 bytes
	// per argument. A longer request is a protocol error that closes the
	// connection. It bounds the memory a connection can make the server
	// hold. Default 8 MiB or 2*MaxValueBytes + 64 KiB, whichever is larger.
	MaxCommandBytes int

	// MaxClients is the most connections served at once; one more is told
	// so and closed. Default 10000 (Redis's maxclients).
	MaxClients int

	// ReadBufferBytes is a connection's read buffer; it grows for a long
	// request and shrinks back after it. Default 16 KiB.
	ReadBufferBytes int

	// WriteBufferBytes is how many reply bytes a connection gathers before
	// it writes them, whether or not requests are still waiting. Default
	// 64 KiB.
	WriteBufferBytes int

	// IdleTimeout closes a connection that sends nothing for this long
	// between requests (Redis's timeout). Default 0: never.
	IdleTimeout time.Duration

	// StallTimeout closes a connection that stops sending in the middle of
	// a request, or stops reading its replies, for this long, so a slow
	// client cannot hold the server's memory. Default 30s.
	StallTimeout time.Duration

	// Authenticate checks a token given with AUTH or HELLO ... AUTH and
	// returns its scope (ScopeRead, ScopeWrite or ScopeAdmin). Nil: no
	// authentication; every connection may run every command.
	Authenticate func(token string) (scope string, ok bool)

	// OOMError, if set, is the error (tested with errors.Is) with which the
	// store refuses a write because the node's memory is full; it is
	// answered with Redis's -OOM.
	OOMError error

	// Keys counts the keys the node holds (DBSIZE, INFO keyspace). Nil:
	// they are counted by listing them.
	Keys func() int

	// Info adds lines to INFO: called with a section name ("server",
	// "persistence", ...), it returns "name:value" lines for it. Optional.
	Info func(section string) []string

	// Fsync is the node's --fsync mode (always, everysec or never), shown
	// by INFO persistence and CONFIG GET appendfsync. Default "always".
	Fsync string

	// Version is the product version INFO and HELLO report beside the Redis
	// version the protocol follows. Default "dev".
	Version string

	// Now is the clock that TTLs are computed with. Default time.Now.
	Now func() time.Time

	// Logger receives connection errors at debug level and failures of the
	// store at error level. Default: discard.
	Logger *slog.Logger

	// Registerer receives the server's metrics. Default: none.
	Registerer prometheus.Registerer

	// goroutines makes a goroutine of its own serve every connection, as
	// where there is no event loop (tests of that path on Linux).
	goroutines bool
}

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// Validate checks the fields against each other.
func (c Config) Validate() error {
	switch {
	case c.MaxKeyBytes < 0, c.MaxValueBytes < 0, c.MaxCommandBytes < 0, c.MaxClients < 0,
		c.ReadBufferBytes < 0, c.WriteBufferBytes < 0, c.IdleTimeout < 0, c.StallTimeout < 0:
		return fmt.Errorf("%w: negative limit", ErrConfig)
	case c.MaxValueBytes > 1<<30:
		return fmt.Errorf("%w: MaxValueBytes %d is over 1 GiB", ErrConfig, c.MaxValueBytes)
	}
	d := c.withDefaults()
	if need := int64(d.MaxKeyBytes) + d.MaxValueBytes + 4*argCost; int64(d.MaxCommandBytes) < need {
		return fmt.Errorf("%w: MaxCommandBytes %d cannot hold a SET of the largest key and value (%d bytes)",
			ErrConfig, d.MaxCommandBytes, need)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = 1024
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = 1 << 20
	}
	if c.MaxCommandBytes == 0 {
		c.MaxCommandBytes = max(8<<20, int(2*c.MaxValueBytes)+64<<10)
	}
	if c.MaxClients == 0 {
		c.MaxClients = 10000
	}
	if c.ReadBufferBytes == 0 {
		c.ReadBufferBytes = 16 << 10
	}
	if c.WriteBufferBytes == 0 {
		c.WriteBufferBytes = 64 << 10
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 30 * time.Second
	}
	if c.Fsync == "" {
		c.Fsync = "always"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
