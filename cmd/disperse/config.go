package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/httpd"
	"github.com/disperse/disperse/internal/size"
	"github.com/disperse/disperse/wal"
)

// Config is every setting of `disperse serve`. Each field has a flag and an
// environment variable (see settings); the flag wins over the variable and
// the variable over the default.
type Config struct {
	// GossipPort is the memberlist port, TCP and UDP. Default 7946.
	GossipPort int
	// HTTPPort is the REST API port. Default 8000.
	HTTPPort int
	// RESPPort is the Redis protocol port; 0 turns it off. Default 6379.
	RESPPort int
	// Join lists host:port gossip addresses to join. Default none.
	Join []string
	// Name is the node's unique name. Default: the host name.
	Name string
	// Bind is the address both listeners bind to. Default 127.0.0.1.
	Bind string
	// Advertise is the address peers use to reach this node. Default "":
	// derived from Bind.
	Advertise string
	// DataDir holds the log, the snapshots and the blob shards. Default ./data.
	DataDir string
	// Fsync is the log's commit mode. Default wal.SyncAlways.
	Fsync wal.SyncMode
	// SnapshotInterval: snapshot at least this often while there are
	// changes. Default 60s.
	SnapshotInterval time.Duration
	// SnapshotWALBytes: snapshot early once the log since the last snapshot
	// passes this. Default 64 MiB.
	SnapshotWALBytes int64
	// GossipInterval, GossipNodes, ProbeInterval and ProbeTimeout tune
	// memberlist. Zero: memberlist's LAN defaults.
	GossipInterval time.Duration
	GossipNodes    int
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	// MaxKeyBytes is the longest key accepted. Default 1024.
	MaxKeyBytes int
	// MaxValueBytes is the largest cache value accepted. Default 1 MiB.
	MaxValueBytes int64
	// BlobDataShards and BlobParityShards are the default k and m of a
	// blob. Defaults 4 and 2.
	BlobDataShards   int
	BlobParityShards int
	// BlobRebuildAfter is how long a shard holder may be gone before its
	// shards are rebuilt on live nodes. Default 10m.
	BlobRebuildAfter time.Duration
	// BlobIdleTimeout is how long a shard transfer with another node may
	// go without a byte moving before it is cut. Default 30s.
	BlobIdleTimeout time.Duration
	// BlobScrubInterval: every shard this node holds is re-read and its
	// checksums verified at least this often. Default 24h.
	BlobScrubInterval time.Duration
	// BlobScrubRate bounds the scrubber's reads, in bytes per second.
	// Default 16 MiB.
	BlobScrubRate int64
	// TombstoneTTL is how long a delete is remembered for anti-entropy.
	// Default 24h.
	TombstoneTTL time.Duration
	// AntiEntropyInterval is how often the node compares its entries with
	// a random peer in the background; catch-up on (re)join does not wait
	// for it. Default 30s.
	AntiEntropyInterval time.Duration
	// ReadySyncTimeout is how long /readyz waits for the first sync with a
	// live peer before it answers 200 anyway. Default 10s.
	ReadySyncTimeout time.Duration
	// MaxClockSkew: versions from a peer further ahead of this node's
	// clock than this are refused. Default 1m.
	MaxClockSkew time.Duration
	// WALSegmentBytes is the size a log segment is preallocated to.
	// Default 64 MiB; 4 KiB to 4 GiB.
	WALSegmentBytes int64
	// LogLevel is the lowest level logged. Default info.
	LogLevel slog.Level
	// LogFormat is "text" or "json". Default text.
	LogFormat string
	// TimerSlack is the timer slack of the node's threads (applyTimerSlack);
	// 0 keeps the one the process was started with.
	TimerSlack time.Duration
	// timerSlackErr is why TimerSlack could not be applied, logged at start.
	timerSlackErr error

	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests.
	// Default 10s.
	ShutdownTimeout time.Duration
	// AuthFile is the client token file: one token per line as "name scope
	// token", scope read, write or admin. Default none.
	AuthFile string
	// AuthFileTokens are the tokens read from AuthFile when the settings
	// were parsed.
	AuthFileTokens []httpd.Token
	// AuthToken is one client token of scope admin. Default none.
	AuthToken string
	// MetricsPublic serves /metrics without a token. Default false.
	MetricsPublic bool
	// TLSCert and TLSKey are the PEM certificate (with its chain) and key
	// the API is served with over TLS. Default none: plain HTTP.
	TLSCert string
	TLSKey  string
	// TLSClientCA is a PEM file of the CA client certificates must be
	// signed by; with it every client must present one. Default none.
	TLSClientCA string
	// TLSPeerCA is a PEM file of CAs that peers' certificates may chain to,
	// besides the system's roots, TLSClientCA and the certificates in
	// TLSCert (see peerTLS). Default none.
	TLSPeerCA string
	// RateLimit is the requests per second each client may make (per
	// token name, else per IP address). Default 0: no limit.
	RateLimit float64
	// RateBurst is how many requests a client may make at once above the
	// rate. Default 0: one second's worth.
	RateBurst int
	// MaxConns is the most client connections open at once; the next is
	// answered 503. Default 4096.
	MaxConns int
	// MaxBlobTransfers is the most blob streams (uploads, downloads, shard
	// transfers) at once; the next is answered 503. Default 64.
	MaxBlobTransfers int
	// BodyIdleTimeout cuts a request whose body moves no byte this long.
	// Default 30s.
	BodyIdleTimeout time.Duration
	// MaxBodyMemory bounds the request bodies buffered at once over every
	// connection. Default 256 MiB.
	MaxBodyMemory int64
	// ClusterKeys encrypt gossip and sign node-to-node requests, the first
	// one primary (--cluster-key). Default none.
	ClusterKeys [][]byte
	// ClusterKeyFile holds the cluster keys instead, one line of
	// comma-separated base64 keys; it is read again on SIGHUP, which is
	// how keys are rotated on a running cluster. Default none.
	ClusterKeyFile string
	// Insecure allows a non-loopback bind without client tokens or without
	// a cluster key. Default false.
	Insecure bool
	// MaxMemory bounds the memory the node holds, in bytes; 0 is no bound.
	// Default: engine.DefaultMaxMemory of the cgroup's memory.max (3/4 of
	// a container's memory limit), else none.
	MaxMemory int64
	// Eviction is what the node does at MaxMemory. Default
	// engine.EvictAllKeys.
	Eviction engine.Policy
}

// setting is one node setting: its flag, its environment variable, its
// default as written on the command line, and how to store a value.
type setting struct {
	flag, env, def, usage string
	set                   func(c *Config, v string) error
}

// settings is the node settings table of API.md, in its order. The names
// and defaults appear in --help exactly as they are here.
func settings() []setting {
	return []setting{
		{"gossip-port", "PORT", "7946", "memberlist port (TCP and UDP)", func(c *Config, v string) error { return parsePort(v, &c.GossipPort) }},
		{"http-port", "HTTP_PORT", "8000", "REST API port", func(c *Config, v string) error { return parsePort(v, &c.HTTPPort) }},
		{"resp-port", "RESP_PORT", "6379", "Redis protocol port (RESP2 and RESP3); 0 turns it off", func(c *Config, v string) error { return parsePort(v, &c.RESPPort) }},
		{"join", "PEER", "", "comma-separated host:port gossip addresses to join", func(c *Config, v string) error { return parseJoin(v, &c.Join) }},
		{"name", "NODE_NAME", "", "unique node name", func(c *Config, v string) error { return parseName(v, &c.Name) }},
		{"bind", "BIND_ADDR", "127.0.0.1", "IP address both listeners bind to (0.0.0.0 for a real cluster)", func(c *Config, v string) error { return parseIP(v, &c.Bind) }},
		{"advertise", "ADVERTISE_ADDR", "", "address peers use to reach this node", func(c *Config, v string) error { return parseHost(v, &c.Advertise) }},
		{"data-dir", "DATA_DIR", "./data", "write-ahead log, snapshots and blob shards", func(c *Config, v string) error { return parseNonEmpty(v, &c.DataDir) }},
		{"fsync", "FSYNC", "always", "always (a 2xx means on disk), everysec or never", func(c *Config, v string) error { return parseFsync(v, &c.Fsync) }},
		{"snapshot-interval", "SNAPSHOT_INTERVAL", "60s", "snapshot at least this often while there are changes", func(c *Config, v string) error { return parseDuration(v, false, &c.SnapshotInterval) }},
		{"snapshot-wal-bytes", "SNAPSHOT_WAL_BYTES", "64MiB", "snapshot early when the log since the last one grows past this", func(c *Config, v string) error { return parseSize(v, 1, &c.SnapshotWALBytes) }},
		{"gossip-interval", "GOSSIP_INTERVAL", "", "memberlist gossip interval", func(c *Config, v string) error { return parseDuration(v, true, &c.GossipInterval) }},
		{"gossip-nodes", "GOSSIP_NODES", "", "memberlist gossip fan-out", func(c *Config, v string) error { return parseInt(v, 0, 1<<16, &c.GossipNodes) }},
		{"probe-interval", "PROBE_INTERVAL", "", "memberlist probe interval", func(c *Config, v string) error { return parseDuration(v, true, &c.ProbeInterval) }},
		{"probe-timeout", "PROBE_TIMEOUT", "", "memberlist probe timeout", func(c *Config, v string) error { return parseDuration(v, true, &c.ProbeTimeout) }},
		{"max-key-bytes", "MAX_KEY_BYTES", "1024", "longest key accepted", func(c *Config, v string) error { return parseIntSize(v, &c.MaxKeyBytes) }},
		{"max-value-bytes", "MAX_VALUE_BYTES", "1MiB", "largest cache value accepted; larger values belong in /blob", func(c *Config, v string) error { return parseSize(v, 1, &c.MaxValueBytes) }},
		{"blob-data-shards", "BLOB_DATA_SHARDS", "4", "default k: data shards per blob stripe", func(c *Config, v string) error { return parseInt(v, 1, 256, &c.BlobDataShards) }},
		{"blob-parity-shards", "BLOB_PARITY_SHARDS", "2", "default m: parity shards per blob stripe", func(c *Config, v string) error { return parseInt(v, 0, 255, &c.BlobParityShards) }},
		{"blob-rebuild-after", "BLOB_REBUILD_AFTER", "10m", "how long a shard holder may be gone before its shards are rebuilt elsewhere", func(c *Config, v string) error { return parseDuration(v, false, &c.BlobRebuildAfter) }},
		{"blob-idle-timeout", "BLOB_IDLE_TIMEOUT", "30s", "how long a shard transfer with another node may move no byte before it is given up", func(c *Config, v string) error { return parseDuration(v, false, &c.BlobIdleTimeout) }},
		{"blob-scrub-interval", "BLOB_SCRUB_INTERVAL", "24h", "every shard is re-read and verified at least this often", func(c *Config, v string) error { return parseDuration(v, false, &c.BlobScrubInterval) }},
		{"blob-scrub-rate", "BLOB_SCRUB_RATE", "16MiB", "bytes per second the shard scrubber may read", func(c *Config, v string) error { return parseSize(v, 1, &c.BlobScrubRate) }},
		{"tombstone-ttl", "TOMBSTONE_TTL", "24h", "how long a delete is kept for anti-entropy", func(c *Config, v string) error { return parseDuration(v, false, &c.TombstoneTTL) }},
		{"antientropy-interval", "ANTIENTROPY_INTERVAL", "30s", "background comparison with a peer; catch-up on (re)join does not wait for it", func(c *Config, v string) error { return parseDuration(v, false, &c.AntiEntropyInterval) }},
		{"ready-sync-timeout", "READY_SYNC_TIMEOUT", "10s", "how long /readyz waits for the first sync with a live peer", func(c *Config, v string) error { return parseDuration(v, false, &c.ReadySyncTimeout) }},
		{"max-clock-skew", "MAX_CLOCK_SKEW", "1m", "peer versions further ahead of this node's clock are refused", func(c *Config, v string) error { return parseDuration(v, false, &c.MaxClockSkew) }},
		{"wal-segment-bytes", "WAL_SEGMENT_BYTES", "64MiB", "size of a preallocated log segment (4KiB to 4GiB)", func(c *Config, v string) error {
			return parseSizeRange(v, minSegmentBytes, maxSegmentBytes, &c.WALSegmentBytes)
		}},
		{"log-level", "LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error { return parseLevel(v, &c.LogLevel) }},
		{"log-format", "LOG_FORMAT", "text", "text or json", func(c *Config, v string) error { return parseFormat(v, &c.LogFormat) }},
		{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "10s", "how long SIGTERM waits for in-flight requests", func(c *Config, v string) error { return parseDuration(v, false, &c.ShutdownTimeout) }},
		{"timer-slack", "TIMER_SLACK", "1ms", "how late the kernel may fire the node's timers to save wake-ups (0 to 10ms); 0 keeps the system's", func(c *Config, v string) error { return parseTimerSlack(v, &c.TimerSlack) }},
		{"max-memory", "MAX_MEMORY", "auto", "bound on the memory the node holds (e.g. 2GiB, at least 32MiB); auto: 3/4 of the container's memory limit when there is one, else none; none: no bound", func(c *Config, v string) error { return parseMaxMemory(v, &c.MaxMemory) }},
		{"eviction", "EVICTION", "allkeys", "at --max-memory: allkeys (any key, by SIEVE), volatile (keys with a TTL), volatile-ttl (soonest expiry first) or noeviction (writes answer 507)", func(c *Config, v string) error { return parseEviction(v, &c.Eviction) }},
		{"auth-file", "AUTH_FILE", "", "client tokens, one per line: name scope(read|write|admin) token", func(c *Config, v string) error { return parseAuthFile(v, c) }},
		{"auth-token", "AUTH_TOKEN", "", "one client token of scope admin (prefer the variable: flags show in ps)", func(c *Config, v string) error { return parseAuthToken(v, &c.AuthToken) }},
		{"metrics-public", "METRICS_PUBLIC", "false", "serve /metrics without a token", func(c *Config, v string) error { return parseBool(v, &c.MetricsPublic) }},
		{"tls-cert", "TLS_CERT", "", "PEM certificate (and chain) to serve the API over TLS", func(c *Config, v string) error { c.TLSCert = v; return nil }},
		{"tls-key", "TLS_KEY", "", "PEM key of --tls-cert", func(c *Config, v string) error { c.TLSKey = v; return nil }},
		{"tls-client-ca", "TLS_CLIENT_CA", "", "PEM CA that client certificates must be signed by; clients without one are refused", func(c *Config, v string) error { c.TLSClientCA = v; return nil }},
		{"tls-peer-ca", "TLS_PEER_CA", "", "PEM CAs the peers' certificates may be signed by, besides the system's, --tls-client-ca and --tls-cert's", func(c *Config, v string) error { c.TLSPeerCA = v; return nil }},
		{"rate-limit", "RATE_LIMIT", "0", "requests per second per client (token name, else IP); 0: no limit", func(c *Config, v string) error { return parseRate(v, &c.RateLimit) }},
		{"rate-burst", "RATE_BURST", "", "requests a client may make at once above --rate-limit", func(c *Config, v string) error { return parseInt(v, 0, 1<<30, &c.RateBurst) }},
		{"max-conns", "MAX_CONNS", "4096", "client connections open at once; the next is answered 503", func(c *Config, v string) error { return parseInt(v, 1, 1<<24, &c.MaxConns) }},
		{"max-blob-transfers", "MAX_BLOB_TRANSFERS", "64", "blob streams at once (uploads, downloads, shard transfers); the next is answered 503", func(c *Config, v string) error { return parseInt(v, 1, 1<<20, &c.MaxBlobTransfers) }},
		{"body-idle-timeout", "BODY_IDLE_TIMEOUT", "30s", "a request body that moves no byte this long is cut", func(c *Config, v string) error { return parseDuration(v, false, &c.BodyIdleTimeout) }},
		{"max-body-memory", "MAX_BODY_MEMORY", "256MiB", "request bodies buffered at once over all connections; past it a request is answered 503", func(c *Config, v string) error { return parseSize(v, 64<<10, &c.MaxBodyMemory) }},
		{"cluster-key", "CLUSTER_KEY", "", "base64 key(s) of 16, 24 or 32 bytes, comma-separated, the first primary: encrypts gossip and signs node-to-node requests", func(c *Config, v string) error { return parseClusterKeys(v, &c.ClusterKeys) }},
		{"cluster-key-file", "CLUSTER_KEY_FILE", "", "file holding the cluster key(s) as --cluster-key does; read again on SIGHUP to rotate keys", func(c *Config, v string) error { return parseKeyFile(v, c) }},
		{"insecure", "INSECURE", "false", "allow a non-loopback bind without client tokens or without a cluster key", func(c *Config, v string) error { return parseBool(v, &c.Insecure) }},
	}
}

// SettingError is a setting that could not be used. Its message is the one
// line the node prints before it exits with status 2.
type SettingError struct {
	Flag string // the flag name, without dashes
	Env  string // the environment variable, if the value came from there
	Err  error
}

func (e *SettingError) Error() string {
	if e.Env != "" {
		return fmt.Sprintf("bad setting --%s (from %s): %v", e.Flag, e.Env, e.Err)
	}
	return fmt.Sprintf("bad setting --%s: %v", e.Flag, e.Err)
}

func (e *SettingError) Unwrap() error { return e.Err }

// parseServe reads the settings of `disperse serve` from args and from the
// environment through getenv (os.LookupEnv in the binary). It returns
// flag.ErrHelp for --help, and a one-line error for anything else wrong.
func parseServe(args []string, getenv func(string) (string, bool)) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	table := settings()
	values := make([]string, len(table))
	for i, s := range table {
		values[i] = s.def
		if s.def == "false" {
			fs.Var((*boolValue)(&values[i]), s.flag, s.usage)
		} else {
			fs.StringVar(&values[i], s.flag, s.def, s.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w (see disperse serve --help)", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see disperse serve --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var cfg Config
	for i, s := range table {
		v, env := values[i], ""
		if !given[s.flag] {
			if ev, ok := getenv(s.env); ok && ev != "" {
				v, env = ev, s.env
			}
		}
		if err := s.set(&cfg, v); err != nil {
			return Config{}, &SettingError{Flag: s.flag, Env: env, Err: err}
		}
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname() // Validate reports it if there is none
	}
	return cfg, cfg.Validate()
}

// DefaultConfig is the node on every default: what `disperse serve` runs
// with no flag and no variable set.
func DefaultConfig() Config {
	cfg, err := parseServe(nil, func(string) (string, bool) { return "", false })
	var se *SettingError
	if err != nil && !(errors.As(err, &se) && se.Flag == "name") {
		panic(fmt.Sprintf("disperse: the default settings are invalid: %v", err)) // a bug in settings()
	}
	return cfg // without a Name when the host name is unknown
}

// Validate checks the settings against each other.
func (c Config) Validate() error {
	if c.Name == "" {
		return &SettingError{Flag: "name", Err: errors.New("the host name is unknown, so the node needs one")}
	}
	if c.BlobDataShards+c.BlobParityShards > 256 {
		return &SettingError{Flag: "blob-parity-shards", Err: fmt.Errorf("data + parity shards is %d, at most 256", c.BlobDataShards+c.BlobParityShards)}
	}
	if c.GossipPort != 0 && c.GossipPort == c.HTTPPort {
		return &SettingError{Flag: "http-port", Err: fmt.Errorf("%d is also the gossip port", c.HTTPPort)}
	}
	if !c.Insecure && len(c.ClusterKeys) == 0 && !loopback(c.Bind) {
		return &SettingError{Flag: "cluster-key", Err: fmt.Errorf(
			"bound to %s, a node needs a cluster key so that nobody else can join or forge writes: set --cluster-key (head -c 32 /dev/urandom | base64), or --insecure on a trusted network", c.Bind)}
	}
	if _, err := c.clientTokens(); err != nil {
		return err
	}
	if _, err := c.tlsConfig(); err != nil {
		return err
	}
	if _, err := c.peerTLS(); err != nil {
		return err
	}
	return c.protectedMode()
}

// protectedMode refuses a node that anyone on the network could use: bound
// to an address other than loopback, with no client authentication (no
// token, no client certificate), unless --insecure says the network is
// trusted. This is Redis's protected mode, with the fix in the message.
func (c Config) protectedMode() error {
	if c.Insecure || loopback(c.Bind) || c.AuthFile != "" || c.AuthToken != "" || c.TLSClientCA != "" {
		return nil
	}
	return fmt.Errorf("refusing to start: --bind %s is not a loopback address and no client token is set, "+
		"so anyone who reaches port %d could read and change every key; set --auth-token or --auth-file "+
		"(or --tls-client-ca), bind to 127.0.0.1, or pass --insecure on a network you trust", c.Bind, c.HTTPPort)
}

// clientTokens is the client token set: the file's tokens and the admin
// token of --auth-token (named "auth-token"); nil when there is none.
func (c Config) clientTokens() (*httpd.Tokens, error) {
	list := append([]httpd.Token(nil), c.AuthFileTokens...)
	if c.AuthToken != "" {
		list = append(list, httpd.Token{Name: "auth-token", Scope: httpd.ScopeAdmin, Secret: c.AuthToken})
	}
	if len(list) == 0 {
		return nil, nil
	}
	t, err := httpd.NewTokens(list)
	if err != nil {
		return nil, &SettingError{Flag: "auth-token", Err: fmt.Errorf("with --auth-file: %w", err)}
	}
	return t, nil
}

// tlsConfig loads the API's TLS files; nil without --tls-cert.
func (c Config) tlsConfig() (*tls.Config, error) {
	switch {
	case c.TLSCert == "" && c.TLSKey == "" && c.TLSClientCA == "":
		return nil, nil
	case c.TLSCert == "" && c.TLSKey == "":
		return nil, &SettingError{Flag: "tls-client-ca", Err: errors.New("needs --tls-cert and --tls-key")}
	case c.TLSCert == "":
		return nil, &SettingError{Flag: "tls-key", Err: errors.New("needs --tls-cert")}
	case c.TLSKey == "":
		return nil, &SettingError{Flag: "tls-cert", Err: errors.New("needs --tls-key")}
	}
	if _, err := httpd.LoadTLS(c.TLSCert, c.TLSKey, ""); err != nil {
		return nil, &SettingError{Flag: "tls-cert", Err: err}
	}
	cfg, err := httpd.LoadTLS(c.TLSCert, c.TLSKey, c.TLSClientCA)
	if err != nil {
		return nil, &SettingError{Flag: "tls-client-ca", Err: err}
	}
	return cfg, nil
}

// peerTLS is the TLS client configuration for requests to peers, which
// serve TLS when the node does; nil without --tls-cert. A peer's
// certificate must chain to the system's roots, the CA of
// --tls-client-ca, one of --tls-peer-ca or a certificate in --tls-cert,
// so that nodes sharing one self-signed certificate need nothing more.
// Its host name is not checked: peers are dialled at the address they
// gossip, and the cluster key authenticates their requests. The node
// presents its own certificate, for peers that require client
// certificates (it then needs the client-auth usage).
func (c Config) peerTLS() (*tls.Config, error) {
	if c.TLSCert == "" || c.TLSKey == "" {
		if c.TLSPeerCA != "" {
			return nil, &SettingError{Flag: "tls-peer-ca", Err: errors.New("needs --tls-cert and --tls-key")}
		}
		return nil, nil
	}
	own, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, &SettingError{Flag: "tls-cert", Err: err}
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, f := range []struct{ flag, file string }{{"tls-cert", c.TLSCert}, {"tls-client-ca", c.TLSClientCA}, {"tls-peer-ca", c.TLSPeerCA}} {
		if f.file == "" {
			continue
		}
		pem, err := os.ReadFile(f.file)
		if err != nil {
			return nil, &SettingError{Flag: f.flag, Err: err}
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &SettingError{Flag: f.flag, Err: fmt.Errorf("no PEM certificate in %s", f.file)}
		}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{own},
		InsecureSkipVerify: true, // the chain is checked below, without a host name
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the peer sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}, nil
}

// loopback reports whether addr is a loopback IP address.
func loopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// boolValue is a setting written as a flag without a value (--insecure),
// or with one (--insecure=false); its default is "false".
type boolValue string

func (b *boolValue) String() string     { return string(*b) }
func (b *boolValue) Set(v string) error { *b = boolValue(v); return nil }
func (b *boolValue) IsBoolFlag() bool   { return true }

func parseBool(v string, dst *bool) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}
	*dst = b
	return nil
}

func parseClusterKeys(v string, dst *[][]byte) error {
	if v == "" {
		return nil
	}
	keys, err := cluster.ParseKeys(v)
	if err != nil {
		return err
	}
	*dst = keys
	return nil
}

// parseKeyFile reads the cluster keys from a file; they replace any
// --cluster-key.
func parseKeyFile(v string, c *Config) error {
	if v == "" {
		return nil
	}
	keys, err := readKeyFile(v)
	if err != nil {
		return err
	}
	c.ClusterKeyFile, c.ClusterKeys = v, keys
	return nil
}

// readKeyFile reads a file of cluster keys.
func readKeyFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	return cluster.ParseKeys(strings.Join(strings.Fields(string(b)), ","))
}

// emptyDefault says in --help what an unset setting with no written
// default means.
func emptyDefault(flag string) string {
	switch flag {
	case "name":
		return "the host name"
	case "advertise":
		return "derived from --bind"
	case "gossip-interval":
		return "memberlist LAN (200ms)"
	case "gossip-nodes":
		return "memberlist LAN (3)"
	case "probe-interval":
		return "memberlist LAN (1s)"
	case "probe-timeout":
		return "memberlist LAN (500ms)"
	case "rate-burst":
		return "one second of --rate-limit"
	}
	return "none"
}

func writeServeUsage(w io.Writer, table []setting) {
	fmt.Fprint(w, "usage: disperse serve [flags]\n\n"+
		"Runs a node. Every flag has an environment variable; the flag wins over the\n"+
		"variable. Durations take Go syntax (300ms, 5s); sizes take bytes or KiB/MiB/GiB.\n\n")
	for _, s := range table {
		def := s.def
		if def == "" {
			def = emptyDefault(s.flag)
		}
		fmt.Fprintf(w, "  --%-20s $%-20s default %s\n        %s\n", s.flag, s.env, def, s.usage)
	}
}

func parsePort(v string, dst *int) error { return parseInt(v, 0, 65535, dst) }

// parseRate reads requests per second: a non-negative number, 0 for none.
func parseRate(v string, dst *float64) error {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return fmt.Errorf("%q is not a number of requests per second (0 for no limit)", v)
	}
	*dst = r
	return nil
}

// parseAuthFile reads the token file, so that a bad line stops the node
// at start with its line number.
func parseAuthFile(v string, c *Config) error {
	c.AuthFile, c.AuthFileTokens = v, nil
	if v == "" {
		return nil
	}
	list, err := httpd.LoadTokenFile(v)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", v, pe.Err)
	}
	if err != nil {
		return err
	}
	c.AuthFileTokens = list
	return nil
}

// parseAuthToken checks the admin token as a token file's would be.
func parseAuthToken(v string, dst *string) error {
	if v != "" {
		if _, err := httpd.NewTokens([]httpd.Token{{Name: "auth-token", Scope: httpd.ScopeAdmin, Secret: v}}); err != nil {
			return err
		}
	}
	*dst = v
	return nil
}

func parseInt(v string, lo, hi int, dst *int) error {
	if v == "" {
		*dst = 0
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	if n < lo || n > hi {
		return fmt.Errorf("%d is out of range %d..%d", n, lo, hi)
	}
	*dst = n
	return nil
}

func parseDuration(v string, zeroOK bool, dst *time.Duration) error {
	if v == "" && zeroOK {
		*dst = 0
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 300ms, 5s, 1h)", v)
	}
	if d < 0 || (d == 0 && !zeroOK) {
		return fmt.Errorf("%s must be positive", v)
	}
	*dst = d
	return nil
}

// maxTimerSlack bounds --timer-slack: every timer of the node (deadlines,
// the replication delay, gossip probes) may fire up to that much late.
const maxTimerSlack = 10 * time.Millisecond

func parseTimerSlack(v string, dst *time.Duration) error {
	var d time.Duration
	if err := parseDuration(v, true, &d); err != nil {
		return err
	}
	if d > maxTimerSlack {
		return fmt.Errorf("%s is more than %s", v, maxTimerSlack)
	}
	*dst = d
	return nil
}

// The range of --wal-segment-bytes. Below a few KiB nearly every commit
// would start a new file; every segment is written in full when it is made,
// so a huge one costs that much disk and time at each rollover.
const (
	minSegmentBytes = 4 << 10
	maxSegmentBytes = 4 << 30
)

// parseSizeRange is parseSize within lo..hi bytes.
func parseSizeRange(v string, lo, hi int64, dst *int64) error {
	var n int64
	if err := parseSize(v, 0, &n); err != nil {
		return err
	}
	if n < lo || n > hi {
		return fmt.Errorf("%q is out of range %s..%s", v, size.Format(lo), size.Format(hi))
	}
	*dst = n
	return nil
}

// parseSize reads plain bytes or a number with KiB, MiB or GiB (package
// size) of at least min bytes into dst.
func parseSize(v string, min int64, dst *int64) error {
	n, err := size.Parse(v, min)
	if err != nil {
		return err
	}
	*dst = n
	return nil
}

func parseIntSize(v string, dst *int) error {
	var n int64
	if err := parseSize(v, 1, &n); err != nil {
		return err
	}
	if n > 1<<30 {
		return fmt.Errorf("%q is too large", v)
	}
	*dst = int(n)
	return nil
}

func parseJoin(v string, dst *[]string) error {
	var peers []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		host, port, err := net.SplitHostPort(p)
		if err != nil || host == "" {
			return fmt.Errorf("%q is not a host:port address", p)
		}
		var n int
		if err := parsePort(port, &n); err != nil || n == 0 {
			return fmt.Errorf("%q has a bad port", p)
		}
		peers = append(peers, p)
	}
	*dst = peers
	return nil
}

func parseName(v string, dst *string) error {
	if strings.ContainsAny(v, " \t\n") {
		return fmt.Errorf("%q contains white space", v)
	}
	*dst = v
	return nil
}

func parseIP(v string, dst *string) error {
	if net.ParseIP(v) == nil {
		return fmt.Errorf("%q is not an IP address", v)
	}
	*dst = v
	return nil
}

// parseHost accepts an IP address or a host name (resolved at start).
func parseHost(v string, dst *string) error {
	if v != "" && net.ParseIP(v) == nil && strings.ContainsAny(v, " :/") {
		return fmt.Errorf("%q is not an IP address or host name", v)
	}
	*dst = v
	return nil
}

func parseNonEmpty(v string, dst *string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	*dst = v
	return nil
}

func parseFsync(v string, dst *wal.SyncMode) error {
	m, err := wal.ParseSyncMode(v)
	if err != nil {
		return fmt.Errorf("%q is not always, everysec or never", v)
	}
	*dst = m
	return nil
}

func parseLevel(v string, dst *slog.Level) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("%q is not debug, info, warn or error", v)
	}
	*dst = l
	return nil
}

func parseFormat(v string, dst *string) error {
	if v != "text" && v != "json" {
		return fmt.Errorf("%q is not text or json", v)
	}
	*dst = v
	return nil
}

// cgroupMemoryMax is where a container's memory limit is read (cgroup v2).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// parseMaxMemory reads --max-memory: a size of at least
// engine.MinMaxMemory, "none" (or 0), or "auto".
func parseMaxMemory(v string, dst *int64) error {
	switch v {
	case "auto":
		*dst = engine.DefaultMaxMemory(cgroupMemoryMax)
		return nil
	case "none", "0":
		*dst = 0
		return nil
	}
	return parseSize(v, engine.MinMaxMemory, dst)
}

func parseEviction(v string, dst *engine.Policy) error {
	p, err := engine.ParsePolicy(v)
	if err != nil {
		return fmt.Errorf("%q is not noeviction, allkeys, volatile or volatile-ttl", v)
	}
	*dst = p
	return nil
}
