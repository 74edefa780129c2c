package blob

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultDataShards          = 4
	DefaultParityShards        = 2
	DefaultShardBlock          = 1 << 20 // bytes of one shard per stripe
	DefaultRebuildAfter        = 10 * time.Minute
	DefaultCleanupGrace        = 10 * time.Minute
	DefaultConnectTimeout      = 5 * time.Second
	DefaultTransferIdleTimeout = 30 * time.Second
	DefaultManifestTimeout     = 2 * time.Second
	DefaultScrubInterval       = 24 * time.Hour
	DefaultScrubRate           = 16 << 20 // bytes per second
)

// The repair pass runs every RebuildAfter/4, but not more often than
// minRepairInterval nor less often than maxRepairInterval (see
// Config.RepairInterval).
const (
	minRepairInterval = time.Second
	maxRepairInterval = time.Minute
)

// Config configures a Store. Zero fields take the defaults named.
type Config struct {
	// Dir is the shard directory (--data-dir/blobs). Required unless
	// Shards is set.
	Dir string
	// Shards keeps this node's shard files. Default NewDirStore(Dir); a
	// test sets a failing one.
	Shards ShardStore
	// Members lists the live nodes. Required.
	Members Members
	// Catalog holds the manifests. Required.
	Catalog Catalog
	// Client reaches other nodes' shards. Default an HTTPClient with
	// ConnectTimeout and TransferIdleTimeout (NewHTTPClientTimeouts).
	Client ShardClient
	// WrapTransport, when set, wraps the HTTP transport of the default
	// Client (the cluster signs node-to-node requests with it). Not used
	// when Client is set.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// PeerTLS is the TLS client configuration of the default Client for
	// nodes whose HTTPAddr is https://. Default nil: Go's defaults.
	PeerTLS *tls.Config
	// ConnectTimeout bounds dialing another node to move shards, and how
	// long a holder may take to accept a new shard before a PUT turns to
	// another node. Default 5s. Not used when Client is set.
	ConnectTimeout time.Duration
	// TransferIdleTimeout is the longest a shard transfer with another
	// node may go without a byte moving while this node waits on that
	// node: for its answer, for the next bytes of a shard being read, or
	// for it to take the next bytes of a shard being written. It is not a
	// deadline for the whole transfer, which lasts as long as the shard
	// takes to stream, and time this node spends waiting on its own
	// caller (a slow uploader or downloader of the blob) does not count.
	// A transfer that stalls is cut with ErrStalled: a read turns to
	// other shards, an upload fails and removes what it wrote. Default
	// 30s. Not used when Client is set.
	TransferIdleTimeout time.Duration
	// DataShards is the default k. Default 4.
	DataShards int
	// ParityShards is the default m. Default 2; NoParity means none.
	ParityShards int
	// StripeBytes is the target bytes of data per stripe; a blob with k
	// data shards uses blocks of ceil(StripeBytes/k) bytes per shard.
	// Default DataShards * 1 MiB.
	StripeBytes int
	// RebuildAfter is how long a holder may be absent from the live
	// members before its shards are rebuilt elsewhere. Default 10m.
	RebuildAfter time.Duration
	// ManifestTimeout is how long a PUT or DELETE waits for another node
	// to take the new manifest (or the deletion) before it answers, and
	// how long a read of a blob this node has no manifest of waits for
	// the nodes it asks. Default 2s.
	ManifestTimeout time.Duration
	// ScrubInterval is how often every shard this node holds is re-read
	// and verified: a pass starts this long after the previous one
	// started, or at once when that one took longer. A shard found
	// missing or damaged is rebuilt from the others. Default 24h;
	// negative disables the scrubber (ScrubOnce still works).
	ScrubInterval time.Duration
	// ScrubRate bounds the scrubber's reads, in bytes per second, so that
	// it takes little from the foreground. Default 16 MiB/s.
	ScrubRate int64
	// CleanupGrace is how old a local shard file without a manifest naming
	// it, or an unfinished temporary file, must be before it is removed.
	// Default 10m.
	CleanupGrace time.Duration
	// RepairInterval is how often the background repair pass runs.
	// Default RebuildAfter/4, within 1s..1m, so that a shard is rebuilt
	// soon after its holder has been gone for RebuildAfter; negative
	// disables the background loop (RepairOnce still works).
	RepairInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives repair and failure lines. Default: discard.
	Logger *slog.Logger
	// Registerer receives the blob metrics. Default: none are registered.
	Registerer prometheus.Registerer
}

// NoParity, as a parity count in Config or PutOptions, asks for no parity
// shards (zero means the default there).
const NoParity = -1

// DefaultConfig returns a Config with every default filled in except Dir,
// Members and Catalog.
func DefaultConfig() Config {
	return Config{
		DataShards:          DefaultDataShards,
		ParityShards:        DefaultParityShards,
		StripeBytes:         DefaultDataShards * DefaultShardBlock,
		RebuildAfter:        DefaultRebuildAfter,
		CleanupGrace:        DefaultCleanupGrace,
		RepairInterval:      repairInterval(DefaultRebuildAfter),
		ConnectTimeout:      DefaultConnectTimeout,
		TransferIdleTimeout: DefaultTransferIdleTimeout,
		ManifestTimeout:     DefaultManifestTimeout,
		ScrubInterval:       DefaultScrubInterval,
		ScrubRate:           DefaultScrubRate,
		Now:                 time.Now,
		Logger:              slog.New(slog.DiscardHandler),
	}
}

// Validate checks the fields on their own and against each other.
func (c Config) Validate() error {
	switch {
	case c.Members == nil:
		return errors.New("blob: Config.Members is required")
	case c.Catalog == nil:
		return errors.New("blob: Config.Catalog is required")
	case c.Dir == "" && c.Shards == nil:
		return errors.New("blob: Config.Dir or Config.Shards is required")
	case c.StripeBytes < 0 || c.StripeBytes > maxBlockSize:
		return fmt.Errorf("blob: StripeBytes %d out of range", c.StripeBytes)
	case c.RebuildAfter < 0 || c.CleanupGrace < 0:
		return errors.New("blob: RebuildAfter and CleanupGrace must not be negative")
	case c.ConnectTimeout < 0 || c.TransferIdleTimeout < 0 || c.ManifestTimeout < 0:
		return errors.New("blob: ConnectTimeout, TransferIdleTimeout and ManifestTimeout must not be negative")
	case c.ScrubRate < 0:
		return errors.New("blob: ScrubRate must not be negative")
	}
	k, m := c.DataShards, c.ParityShards
	if k == 0 {
		k = DefaultDataShards
	}
	if m == 0 {
		m = DefaultParityShards
	} else if m == NoParity {
		m = 0
	}
	return validateParams(k, m)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DataShards == 0 {
		c.DataShards = d.DataShards
	}
	if c.ParityShards == 0 {
		c.ParityShards = d.ParityShards
	} else if c.ParityShards == NoParity {
		c.ParityShards = 0
	}
	if c.StripeBytes == 0 {
		c.StripeBytes = c.DataShards * DefaultShardBlock
	}
	if c.RebuildAfter == 0 {
		c.RebuildAfter = d.RebuildAfter
	}
	if c.CleanupGrace == 0 {
		c.CleanupGrace = d.CleanupGrace
	}
	if c.RepairInterval == 0 {
		c.RepairInterval = repairInterval(c.RebuildAfter)
	}
	if c.ManifestTimeout == 0 {
		c.ManifestTimeout = d.ManifestTimeout
	}
	if c.ScrubInterval == 0 {
		c.ScrubInterval = d.ScrubInterval
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = d.ScrubRate
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.TransferIdleTimeout == 0 {
		c.TransferIdleTimeout = d.TransferIdleTimeout
	}
	if c.Client == nil {
		hc := NewHTTPClientTimeouts(c.ConnectTimeout, c.TransferIdleTimeout)
		hc.tr.TLSClientConfig = c.PeerTLS
		if c.WrapTransport != nil {
			hc.hc.Transport = c.WrapTransport(hc.tr)
		}
		c.Client = hc
	}
	return c
}

// repairInterval is the default repair pass interval for rebuildAfter.
func repairInterval(rebuildAfter time.Duration) time.Duration {
	return min(max(rebuildAfter/4, minRepairInterval), maxRepairInterval)
}
