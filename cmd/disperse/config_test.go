package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/disperse/disperse/blob"
	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/wal"
)

// envOf turns a map into the getenv parseServe takes.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseServeDefaults(t *testing.T) {
	cfg, err := parseServe(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		GossipPort: 7946, HTTPPort: 8000, RESPPort: 6379, Bind: "127.0.0.1", DataDir: "./data",
		Fsync: wal.SyncAlways, SnapshotInterval: 60 * time.Second, SnapshotWALBytes: 64 << 20,
		MaxKeyBytes: 1024, MaxValueBytes: 1 << 20, BlobDataShards: 4, BlobParityShards: 2,
		BlobRebuildAfter: 10 * time.Minute, BlobIdleTimeout: 30 * time.Second,
		BlobScrubInterval: 24 * time.Hour, BlobScrubRate: 16 << 20, TombstoneTTL: 24 * time.Hour,
		AntiEntropyInterval: 30 * time.Second, ReadySyncTimeout: 10 * time.Second, MaxClockSkew: time.Minute,
		WALSegmentBytes: 64 << 20, LogLevel: slog.LevelInfo, LogFormat: "text",
		ShutdownTimeout: 10 * time.Second, MaxConns: 4096, MaxBlobTransfers: 64, BodyIdleTimeout: 30 * time.Second,
		MaxBodyMemory: 256 << 20, TimerSlack: time.Millisecond,
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("DefaultConfig() = %+v, want %+v", DefaultConfig(), cfg)
	}
	if cfg.Name == "" {
		t.Error("Name did not default to the host name")
	}
	cfg.Name = ""
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseServePrecedence(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(Config) bool
	}{
		{"env over default", nil, map[string]string{"HTTP_PORT": "9000"},
			func(c Config) bool { return c.HTTPPort == 9000 }},
		{"flag over env", []string{"--http-port", "9001"}, map[string]string{"HTTP_PORT": "9000"},
			func(c Config) bool { return c.HTTPPort == 9001 }},
		{"flag equal to default still wins", []string{"--gossip-port=7946"}, map[string]string{"PORT": "7000"},
			func(c Config) bool { return c.GossipPort == 7946 }},
		{"empty env is unset", nil, map[string]string{"PORT": ""},
			func(c Config) bool { return c.GossipPort == 7946 }},
		{"peers from PEER", nil, map[string]string{"PEER": "a:7946, b:7000,"},
			func(c Config) bool { return reflect.DeepEqual(c.Join, []string{"a:7946", "b:7000"}) }},
		{"name from NODE_NAME", nil, map[string]string{"NODE_NAME": "n1"},
			func(c Config) bool { return c.Name == "n1" }},
		{"sizes with units", []string{"--snapshot-wal-bytes", "256KiB", "--max-value-bytes", "2MiB", "--max-key-bytes", "1KiB"}, nil,
			func(c Config) bool {
				return c.SnapshotWALBytes == 256<<10 && c.MaxValueBytes == 2<<20 && c.MaxKeyBytes == 1024
			}},
		{"plain bytes and GiB", nil, map[string]string{"SNAPSHOT_WAL_BYTES": "1GiB", "MAX_VALUE_BYTES": "4096"},
			func(c Config) bool { return c.SnapshotWALBytes == 1<<30 && c.MaxValueBytes == 4096 }},
		{"durations", []string{"--snapshot-interval", "300ms", "--probe-timeout", "250ms"}, map[string]string{"GOSSIP_INTERVAL": "50ms", "TOMBSTONE_TTL": "1h", "BLOB_REBUILD_AFTER": "90s", "BLOB_IDLE_TIMEOUT": "2m"},
			func(c Config) bool {
				return c.SnapshotInterval == 300*time.Millisecond && c.ProbeTimeout == 250*time.Millisecond &&
					c.GossipInterval == 50*time.Millisecond && c.TombstoneTTL == time.Hour && c.BlobRebuildAfter == 90*time.Second &&
					c.BlobIdleTimeout == 2*time.Minute
			}},
		{"memberlist settings default to zero", nil, nil,
			func(c Config) bool { return c.GossipInterval == 0 && c.GossipNodes == 0 && c.ProbeInterval == 0 }},
		{"fsync and log level", []string{"--fsync", "never"}, map[string]string{"FSYNC": "everysec", "LOG_LEVEL": "debug", "LOG_FORMAT": "json"},
			func(c Config) bool {
				return c.Fsync == wal.SyncNever && c.LogLevel == slog.LevelDebug && c.LogFormat == "json"
			}},
		{"bind and advertise", []string{"--bind", "0.0.0.0", "--insecure"}, map[string]string{"ADVERTISE_ADDR": "node1.internal"},
			func(c Config) bool { return c.Bind == "0.0.0.0" && c.Advertise == "node1.internal" && c.Insecure }},
		{"cluster keys", []string{"--bind", "10.0.0.1"}, map[string]string{"AUTH_TOKEN": "0123456789abcdef", "CLUSTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZg==, QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="},
			func(c Config) bool {
				return len(c.ClusterKeys) == 2 && string(c.ClusterKeys[0]) == "0123456789abcdef" && len(c.ClusterKeys[1]) == 32 && !c.Insecure
			}},
		{"insecure from the environment", []string{"--bind", "0.0.0.0"}, map[string]string{"INSECURE": "true"},
			func(c Config) bool { return c.Insecure }},
		{"blob shards", nil, map[string]string{"BLOB_DATA_SHARDS": "10", "BLOB_PARITY_SHARDS": "0"},
			func(c Config) bool { return c.BlobDataShards == 10 && c.BlobParityShards == 0 }},
		{"cluster timings", []string{"--antientropy-interval", "5s", "--max-clock-skew", "30s"}, map[string]string{"READY_SYNC_TIMEOUT": "2s", "MAX_CLOCK_SKEW": "1h"},
			func(c Config) bool {
				return c.AntiEntropyInterval == 5*time.Second && c.ReadySyncTimeout == 2*time.Second && c.MaxClockSkew == 30*time.Second
			}},
		{"log segment size", nil, map[string]string{"WAL_SEGMENT_BYTES": "4KiB"},
			func(c Config) bool { return c.WALSegmentBytes == 4<<10 }},
		{"largest log segment", []string{"--wal-segment-bytes", "4GiB"}, nil,
			func(c Config) bool { return c.WALSegmentBytes == 4<<30 }},
		{"timer slack off", nil, map[string]string{"TIMER_SLACK": "0"},
			func(c Config) bool { return c.TimerSlack == 0 }},
		{"largest timer slack", []string{"--timer-slack", "10ms"}, map[string]string{"TIMER_SLACK": "0"},
			func(c Config) bool { return c.TimerSlack == 10*time.Millisecond }},
		{"blob scrubbing", []string{"--blob-scrub-rate", "1MiB"}, map[string]string{"BLOB_SCRUB_INTERVAL": "1h", "BLOB_SCRUB_RATE": "5"},
			func(c Config) bool { return c.BlobScrubInterval == time.Hour && c.BlobScrubRate == 1<<20 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe(tt.args, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("got %+v", cfg)
			}
		})
	}
}

func TestParseServeBadSettings(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string // the whole one-line message
	}{
		{[]string{"--http-port", "http"}, nil, `bad setting --http-port: "http" is not a whole number`},
		{nil, map[string]string{"HTTP_PORT": "70000"}, `bad setting --http-port (from HTTP_PORT): 70000 is out of range 0..65535`},
		{nil, map[string]string{"PORT": "-1"}, `bad setting --gossip-port (from PORT): -1 is out of range 0..65535`},
		{nil, map[string]string{"PEER": "nohost"}, `bad setting --join (from PEER): "nohost" is not a host:port address`},
		{[]string{"--join", "a:0"}, nil, `bad setting --join: "a:0" has a bad port`},
		{nil, map[string]string{"NODE_NAME": "a b"}, `bad setting --name (from NODE_NAME): "a b" contains white space`},
		{nil, map[string]string{"BIND_ADDR": "localhost"}, `bad setting --bind (from BIND_ADDR): "localhost" is not an IP address`},
		{[]string{"--advertise", "a:1"}, nil, `bad setting --advertise: "a:1" is not an IP address or host name`},
		{[]string{"--data-dir", ""}, nil, `bad setting --data-dir: must not be empty`},
		{nil, map[string]string{"FSYNC": "sometimes"}, `bad setting --fsync (from FSYNC): "sometimes" is not always, everysec or never`},
		{nil, map[string]string{"SNAPSHOT_INTERVAL": "60"}, `bad setting --snapshot-interval (from SNAPSHOT_INTERVAL): "60" is not a duration (e.g. 300ms, 5s, 1h)`},
		{[]string{"--snapshot-interval", "0s"}, nil, `bad setting --snapshot-interval: 0s must be positive`},
		{nil, map[string]string{"SNAPSHOT_WAL_BYTES": "64MB"}, `bad setting --snapshot-wal-bytes (from SNAPSHOT_WAL_BYTES): "64MB" is not a size (bytes, or a whole number with KiB, MiB or GiB)`},
		{[]string{"--snapshot-wal-bytes", "0"}, nil, `bad setting --snapshot-wal-bytes: "0" is less than 1 bytes`},
		{nil, map[string]string{"GOSSIP_INTERVAL": "-1s"}, `bad setting --gossip-interval (from GOSSIP_INTERVAL): -1s must be positive`},
		{nil, map[string]string{"GOSSIP_NODES": "three"}, `bad setting --gossip-nodes (from GOSSIP_NODES): "three" is not a whole number`},
		{nil, map[string]string{"PROBE_INTERVAL": "fast"}, `bad setting --probe-interval (from PROBE_INTERVAL): "fast" is not a duration (e.g. 300ms, 5s, 1h)`},
		{[]string{"--probe-timeout", "1"}, nil, `bad setting --probe-timeout: "1" is not a duration (e.g. 300ms, 5s, 1h)`},
		{nil, map[string]string{"MAX_KEY_BYTES": "2GiB"}, `bad setting --max-key-bytes (from MAX_KEY_BYTES): "2GiB" is too large`},
		{[]string{"--max-value-bytes", "1.5MiB"}, nil, `bad setting --max-value-bytes: "1.5MiB" is not a size (bytes, or a whole number with KiB, MiB or GiB)`},
		{nil, map[string]string{"BLOB_DATA_SHARDS": "0"}, `bad setting --blob-data-shards (from BLOB_DATA_SHARDS): 0 is out of range 1..256`},
		{nil, map[string]string{"BLOB_PARITY_SHARDS": "x"}, `bad setting --blob-parity-shards (from BLOB_PARITY_SHARDS): "x" is not a whole number`},
		{[]string{"--blob-data-shards", "200", "--blob-parity-shards", "100"}, nil, `bad setting --blob-parity-shards: data + parity shards is 300, at most 256`},
		{nil, map[string]string{"TOMBSTONE_TTL": "forever"}, `bad setting --tombstone-ttl (from TOMBSTONE_TTL): "forever" is not a duration (e.g. 300ms, 5s, 1h)`},
		{[]string{"--blob-rebuild-after", "0s"}, nil, `bad setting --blob-rebuild-after: 0s must be positive`},
		{nil, map[string]string{"BLOB_IDLE_TIMEOUT": "-1s"}, `bad setting --blob-idle-timeout (from BLOB_IDLE_TIMEOUT): -1s must be positive`},
		{[]string{"--blob-scrub-interval", "0s"}, nil, `bad setting --blob-scrub-interval: 0s must be positive`},
		{nil, map[string]string{"BLOB_SCRUB_RATE": "0"}, `bad setting --blob-scrub-rate (from BLOB_SCRUB_RATE): "0" is less than 1 bytes`},
		{[]string{"--blob-scrub-rate", "fast"}, nil, `bad setting --blob-scrub-rate: "fast" is not a size (bytes, or a whole number with KiB, MiB or GiB)`},
		{nil, map[string]string{"ANTIENTROPY_INTERVAL": "0s"}, `bad setting --antientropy-interval (from ANTIENTROPY_INTERVAL): 0s must be positive`},
		{[]string{"--antientropy-interval", "30"}, nil, `bad setting --antientropy-interval: "30" is not a duration (e.g. 300ms, 5s, 1h)`},
		{nil, map[string]string{"READY_SYNC_TIMEOUT": "-5s"}, `bad setting --ready-sync-timeout (from READY_SYNC_TIMEOUT): -5s must be positive`},
		{[]string{"--max-clock-skew", "0s"}, nil, `bad setting --max-clock-skew: 0s must be positive`},
		{nil, map[string]string{"WAL_SEGMENT_BYTES": "1KiB"}, `bad setting --wal-segment-bytes (from WAL_SEGMENT_BYTES): "1KiB" is out of range 4KiB..4GiB`},
		{[]string{"--wal-segment-bytes", "8GiB"}, nil, `bad setting --wal-segment-bytes: "8GiB" is out of range 4KiB..4GiB`},
		{[]string{"--wal-segment-bytes", "0"}, nil, `bad setting --wal-segment-bytes: "0" is out of range 4KiB..4GiB`},
		{[]string{"--timer-slack", "11ms"}, nil, `bad setting --timer-slack: 11ms is more than 10ms`},
		{nil, map[string]string{"TIMER_SLACK": "-1ms"}, `bad setting --timer-slack (from TIMER_SLACK): -1ms must be positive`},
		{[]string{"--timer-slack", "50"}, nil, `bad setting --timer-slack: "50" is not a duration (e.g. 300ms, 5s, 1h)`},
		{nil, map[string]string{"LOG_LEVEL": "loud"}, `bad setting --log-level (from LOG_LEVEL): "loud" is not debug, info, warn or error`},
		{[]string{"--log-format", "xml"}, nil, `bad setting --log-format: "xml" is not text or json`},
		{[]string{"--http-port", "7946"}, nil, `bad setting --http-port: 7946 is also the gossip port`},
		{[]string{"--bind", "0.0.0.0"}, nil, `bad setting --cluster-key: bound to 0.0.0.0, a node needs a cluster key so that nobody else can join or forge writes: set --cluster-key (head -c 32 /dev/urandom | base64), or --insecure on a trusted network`},
		{nil, map[string]string{"CLUSTER_KEY": "c2hvcnQ="}, `bad setting --cluster-key (from CLUSTER_KEY): a cluster key decodes to 5 bytes; it must be 16, 24 or 32 (e.g. head -c 32 /dev/urandom | base64)`},
		{[]string{"--cluster-key", "not base64!"}, nil, `bad setting --cluster-key: a cluster key is not base64: illegal base64 data at input byte 3`},
		{[]string{"--cluster-key-file", "/nonexistent/key"}, nil, `bad setting --cluster-key-file: no such file or directory`},
		{[]string{"--insecure=maybe"}, nil, `bad setting --insecure: "maybe" is not true or false`},
		{[]string{"--no-such-flag"}, nil, `flag provided but not defined: -no-such-flag (see disperse serve --help)`},
		{[]string{"extra"}, nil, `unexpected argument "extra" (see disperse serve --help)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseServe(tt.args, envOf(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestParseServeHelp(t *testing.T) {
	if _, err := parseServe([]string{"--help"}, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	var out bytes.Buffer
	if code := mainArgs([]string{"serve", "--help"}, nil, &out, &out); code != exitOK {
		t.Fatalf("serve --help exited %d", code)
	}
	for _, s := range settings() {
		line := "--" + s.flag
		if !strings.Contains(out.String(), line) || !strings.Contains(out.String(), "$"+s.env) {
			t.Errorf("--help does not list %s with $%s:\n%s", line, s.env, out.String())
		}
	}
	for _, want := range []string{"default 7946", "default 64MiB", "default always", "default 127.0.0.1", "default 30s", "default 16MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestMainArgsBadSettingExits2WithOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	t.Setenv("FSYNC", "maybe")
	code := mainArgs([]string{"serve"}, nil, &stdout, &stderr)
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	want := "disperse serve: bad setting --fsync (from FSYNC): \"maybe\" is not always, everysec or never\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

func TestSizeUnits(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "100B": 100, "1KiB": 1024, "3MiB": 3 << 20, "2GiB": 2 << 30, "5 KiB": 5 << 10} {
		var got int64
		if err := parseSize(in, 1, &got); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestBlobConfigFromSettings: the blob settings reach the blob store.
func TestBlobConfigFromSettings(t *testing.T) {
	cfg := Config{DataDir: "d", BlobDataShards: 6, BlobParityShards: 0,
		BlobRebuildAfter: 90 * time.Second, BlobIdleTimeout: 2 * time.Minute}
	got := blobConfig(cfg, nil)
	if got.Dir != filepath.Join("d", "blobs") || got.DataShards != 6 || got.ParityShards != blob.NoParity ||
		got.RebuildAfter != 90*time.Second || got.TransferIdleTimeout != 2*time.Minute {
		t.Fatalf("blob config %+v from %+v", got, cfg)
	}
}

// TestEngineAndClusterConfigFromSettings: the cluster and log settings reach
// the cluster node and the engine, and the cluster keeps its state in the
// data directory.
func TestEngineAndClusterConfigFromSettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = "d"
	cfg.AntiEntropyInterval, cfg.ReadySyncTimeout, cfg.MaxClockSkew = 7*time.Second, 3*time.Second, 90*time.Second
	cfg.WALSegmentBytes = 1 << 20
	log := slog.New(slog.DiscardHandler)
	c := clusterConfig(cfg, log, nil)
	if c.Dir != filepath.Join("d", "cluster") || c.AntiEntropyInterval != 7*time.Second ||
		c.ReadySyncTimeout != 3*time.Second || c.MaxClockSkew != 90*time.Second {
		t.Fatalf("cluster config %+v from %+v", c, cfg)
	}
	if e := engineConfig(cfg, log, nil); e.Dir != "d" || e.SegmentBytes != 1<<20 || e.TombstoneTTL != cfg.TombstoneTTL {
		t.Fatalf("engine config %+v from %+v", e, cfg)
	}
	// The recent writes kept for peers are outside the engine's
	// accounting: a memory bound gives them a share of it.
	cfg.MaxMemory = 0
	if c := clusterConfig(cfg, log, nil); c.RecentBytes != cluster.DefaultConfig().RecentBytes {
		t.Fatalf("recent writes %d without a memory bound", c.RecentBytes)
	}
	cfg.MaxMemory = 16 << 20
	if c := clusterConfig(cfg, log, nil); c.RecentBytes != 512<<10 {
		t.Fatalf("recent writes %d at a 16 MiB bound, want 512 KiB", c.RecentBytes)
	}
}

// TestReadmeListsEverySetting keeps README.md's settings table in step with
// the settings of serve --help, both ways, with their defaults.
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // flag -> env, from rows "| `--flag` | `ENV` | default | ..."
	defaults := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			continue
		}
		flag := strings.Trim(strings.TrimSpace(cells[1]), "`-")
		rows[flag] = strings.Trim(strings.TrimSpace(cells[2]), "`")
		if len(cells) >= 5 {
			defaults[flag] = strings.Trim(strings.TrimSpace(cells[3]), "`")
		}
	}
	known := map[string]bool{}
	for _, s := range settings() {
		known[s.flag] = true
		env, ok := rows[s.flag]
		switch {
		case !ok:
			t.Errorf("README.md's settings table has no row for --%s", s.flag)
		case env != s.env:
			t.Errorf("README.md: --%s has variable %s, serve reads %s", s.flag, env, s.env)
		case s.def != "" && defaults[s.flag] != s.def && !strings.HasPrefix(defaults[s.flag], s.def+" "):
			// A default the table words ("none", "host name") is one serve
			// leaves empty; one serve sets must be the table's, as written
			// ("0 (none)" may explain it).
			t.Errorf("README.md: --%s defaults to %q, serve's default is %s", s.flag, defaults[s.flag], s.def)
		}
	}
	for f := range rows {
		if !known[f] {
			t.Errorf("README.md lists --%s, which serve does not have", f)
		}
	}
}
