package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/disperse/disperse/blob"
	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/httpd"
	"github.com/disperse/disperse/internal/memtrim"
	"github.com/disperse/disperse/internal/sockio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// run is one node's life: it listens on the HTTP port, recovers the engine
// from cfg.DataDir, starts the cluster node and the HTTP API, and serves
// until ctx is done; then it stops accepting requests, finishes the ones in
// flight, leaves the cluster and closes the engine. Logs go to logw. The
// error, if any, is one line fit for the user.
func run(ctx context.Context, cfg Config, logw io.Writer) (err error) {
	log := newLogger(cfg, logw)
	if cfg.timerSlackErr != nil {
		log.Warn("timer slack not applied; running with the system's", "err", cfg.timerSlackErr)
	}
	if err := resolveAdvertise(ctx, &cfg); err != nil {
		return err
	}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	// Listening first turns a port in use into a clear error before any
	// recovery work, and lets /healthz answer while recovery runs.
	ln, err := listenHTTP(cfg)
	if err != nil {
		return err
	}
	if err := checkGossipPort(cfg); err != nil {
		ln.Close()
		return err
	}
	cfg.HTTPPort = ln.Addr().(*net.TCPAddr).Port // the real one when 0 was asked for
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo())
	tlsCfg, err := cfg.tlsConfig()
	var lim net.Listener
	if err == nil {
		lim, err = httpd.Listen(ln, httpd.ListenerConfig{MaxConns: cfg.MaxConns, TLS: tlsCfg, Registerer: reg,
			Logger: log.With("component", "http")})
	}
	if err != nil {
		ln.Close()
		return err
	}
	ln = lim
	h := newSwitchHandler()
	srv := newHTTPServer(h, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "http", ln.Addr().String(), "tls", tlsCfg != nil, "node", cfg.Name, "data_dir", absDir(cfg.DataDir),
		"gomaxprocs", runtime.GOMAXPROCS(0), "version", version)
	logSecurity(cfg, log)

	n, err := start(cfg, log, h, reg)
	if err != nil {
		shutdownHTTP(srv, cfg.ShutdownTimeout, log)
		return err
	}
	stopReload := reloadKeysOnHUP(cfg, n.cluster, log)
	defer stopReload()
	trimCtx, stopTrim := context.WithCancel(ctx)
	defer stopTrim()
	go newTrimmer(log, reg, n.eng.Work).Run(trimCtx)
	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
	case err = <-served:
		err = fmt.Errorf("http server: %w", err)
	case <-n.cluster.Fatal():
		// The error is the node's last line; the log only says why it stops.
		log.Info("stopping", "reason", "the cluster node cannot go on")
		if err = n.cluster.FatalErr(); err == nil {
			err = errors.New("cluster: the node cannot go on")
		}
	}
	shutdownHTTP(srv, cfg.ShutdownTimeout, log)
	if cerr := n.close(log); err == nil {
		err = cerr
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// newTrimmer is the trimmer that gives a quiet node's free heap back, with
// its metrics; work is the engine's (Engine.Work).
func newTrimmer(log *slog.Logger, reg prometheus.Registerer, work func() (uint64, bool)) *memtrim.Trimmer {
	trims := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "disperse_memory_trims_total",
		Help: "Times the node, quiet, collected its heap and returned the free pages to the operating system.",
	})
	returned := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "disperse_memory_trimmed_bytes_total",
		Help: "Heap bytes (objects and free pages still mapped) the trims gave back.",
	})
	reg.MustRegister(trims, returned)
	return &memtrim.Trimmer{Logger: log.With("component", "memory"), Work: work, Trimmed: func(n uint64) {
		trims.Inc()
		returned.Add(float64(n))
	}}
}

// node is what start opened, closed in reverse order.
type node struct {
	eng     *engine.Engine
	cluster *cluster.Node
	blobs   *blob.Store
	resp    *respListener
}

// start opens the engine (recovery), the cluster node and the HTTP routes,
// and installs the routes in h.
func start(cfg Config, log *slog.Logger, h *switchHandler, reg *prometheus.Registry) (*node, error) {
	eng, err := openEngine(cfg, log, reg)
	if err != nil {
		return nil, err
	}
	n := &node{eng: eng}
	cn, err := cluster.New(clusterConfig(cfg, log, reg), eng)
	if err != nil {
		n.close(log)
		return nil, fmt.Errorf("cluster (gossip port %d): %w", cfg.GossipPort, err)
	}
	n.cluster = cn
	bcfg := blobConfig(cfg, cn)
	bcfg.Logger = log.With("component", "blob")
	bcfg.Registerer = reg
	bs, err := blob.New(bcfg)
	if err != nil {
		n.close(log)
		return nil, fmt.Errorf("blob store: %w", err)
	}
	n.blobs = bs
	// The switch handler answers for the node until its routes are
	// installed; then the cluster node says whether it has synced.
	var ready atomic.Bool
	readiness := func() (bool, string) {
		if !ready.Load() {
			return false, "the node is recovering its data"
		}
		return cn.Readiness()
	}
	hcfg := httpConfig(cfg)
	hcfg.Cache, hcfg.Members, hcfg.Blobs, hcfg.Peers = cn, cn, bs, cn.Handler()
	hcfg.VerifyPeer = cn.VerifyPeer
	hcfg.Registerer, hcfg.Gatherer = reg, reg
	hcfg.Ready = readiness
	hcfg.Logger = log.With("component", "http")
	srv, err := httpd.New(hcfg)
	if err != nil {
		n.close(log)
		return nil, fmt.Errorf("http: %w", err)
	}
	if n.resp, err = startRESP(cfg, cn, eng, log, reg); err != nil {
		n.close(log)
		return nil, err
	}
	h.set(srv.Handler())
	ready.Store(true)
	log.Info("ready", "members", len(cn.Members()))
	releaseCode(log)
	return n, nil
}

// releaseCode lets go of the binary's pages that starting touched
// (memtrim.ReleaseCode); a node that cannot says why at debug level and
// runs on as before.
func releaseCode(log *slog.Logger) {
	p, err := memtrim.ReleaseCode()
	if err != nil {
		log.Debug("code pages kept", "err", err)
		return
	}
	log.Info("code pages released", "resident_bytes_before", p.Before, "resident_bytes_after", p.After)
}

// httpConfig maps the node settings onto the HTTP API's (the parts that
// are settings, not wiring).
func httpConfig(cfg Config) httpd.Config {
	tokens, _ := cfg.clientTokens() // checked by Validate
	return httpd.Config{
		MaxKeyBytes:      cfg.MaxKeyBytes,
		MaxValueBytes:    cfg.MaxValueBytes,
		Tokens:           tokens,
		MetricsPublic:    cfg.MetricsPublic,
		BodyIdleTimeout:  cfg.BodyIdleTimeout,
		MaxBodyMemory:    cfg.MaxBodyMemory,
		MaxBlobTransfers: cfg.MaxBlobTransfers,
		RateLimit:        cfg.RateLimit,
		RateBurst:        cfg.RateBurst,
	}
}

// newHTTPServer is the API's server. Headers are bounded in time and size
// (the body limits are the handlers'); HTTP/2 is off, so a connection
// carries one request at a time and --max-conns bounds them.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// maxHeaderBytes bounds a request's head: a key of the longest kind, a
// token and the usual headers fit many times over, and 4096 connections
// sending heads slowly hold at most 256 MiB.
const maxHeaderBytes = 64 << 10

// logSecurity says at start how clients are let in, and warns when the API
// is open to the network.
func logSecurity(cfg Config, log *slog.Logger) {
	tokens, _ := cfg.clientTokens()
	log.Info("client access", "tokens", tokens.Len(), "tls", cfg.TLSCert != "", "client_certificates", cfg.TLSClientCA != "",
		"rate_limit", cfg.RateLimit, "max_conns", cfg.MaxConns, "metrics_public", cfg.MetricsPublic)
	if tokens.Len() == 0 && cfg.TLSClientCA == "" && !loopback(cfg.Bind) {
		log.Warn("the API has no client authentication and listens beyond this machine (--insecure): anyone who reaches it can read and change every key",
			"bind", cfg.Bind, "http_port", cfg.HTTPPort)
	}
	if cfg.AuthFile != "" {
		if fi, err := os.Stat(cfg.AuthFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the token file can be read by other users; chmod 600 it", "auth_file", cfg.AuthFile, "mode", fi.Mode().Perm().String())
		}
	}
}

func openEngine(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*engine.Engine, error) {
	eng, err := engine.Open(engineConfig(cfg, log, reg))
	switch {
	case errors.Is(err, engine.ErrLocked):
		return nil, &lineError{msg: fmt.Sprintf("data dir %s: locked by another running node", cfg.DataDir), err: err}
	case err != nil:
		return nil, fmt.Errorf("data dir %s: recovery failed: %w", cfg.DataDir, err)
	}
	r := eng.Recovery()
	log.Info("recovered",
		"entries", r.SnapshotEntries+int(r.LogRecords),
		"snapshot_entries", r.SnapshotEntries,
		"log_records", r.LogRecords,
		"expired_skipped", r.ExpiredSkipped,
		"torn_bytes", r.Log.TornBytes,
		"torn_file", r.Log.TornFile,
		"took", r.Took)
	return eng, nil
}

// engineConfig maps the node settings onto the engine's.
func engineConfig(cfg Config, log *slog.Logger, reg prometheus.Registerer) engine.Config {
	return engine.Config{
		Dir:              cfg.DataDir,
		Sync:             cfg.Fsync,
		SegmentBytes:     cfg.WALSegmentBytes,
		SnapshotInterval: cfg.SnapshotInterval,
		SnapshotWALBytes: cfg.SnapshotWALBytes,
		TombstoneTTL:     cfg.TombstoneTTL,
		Logger:           log.With("component", "engine"),
		Registerer:       reg,
		MaxMemory:        cfg.MaxMemory,
		Eviction:         cfg.Eviction,
		SetMemoryLimit:   true,
	}
}

// close stops the blob store, leaves the cluster and closes the engine
// (last snapshot, fsync).
func (n *node) close(log *slog.Logger) error {
	var errs []error
	n.resp.stop(log)
	if n.blobs != nil {
		if err := n.blobs.Close(); err != nil {
			log.Error("closing the blob store", "err", err)
			errs = append(errs, fmt.Errorf("closing the blob store: %w", err))
		}
	}
	if n.cluster != nil {
		if err := n.cluster.Close(); err != nil {
			log.Error("leaving the cluster", "err", err)
			errs = append(errs, fmt.Errorf("leaving the cluster: %w", err))
		}
	}
	if err := n.eng.Close(); err != nil {
		log.Error("closing the engine", "err", err)
		errs = append(errs, fmt.Errorf("closing the engine: %w", err))
	}
	return joinLine(errs)
}

// lineError is an error whose message is written for the user, one line,
// over the error it stands for.
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// joinLine is errors.Join on one line: the node's last words are one line.
func joinLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return &lineError{msg: strings.Join(msgs, "; "), err: errors.Join(errs...)}
}

// shutdownHTTP stops accepting connections and waits up to timeout for the
// requests in flight, then cuts the rest.
func shutdownHTTP(srv *http.Server, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("http shutdown: requests cut short", "err", err)
		srv.Close()
	}
}

// prepareDataDir creates dir and proves it writable, so that a bad directory
// is one clear line rather than an error from deep inside recovery.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, unwrapPath(err))
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data dir %s: not writable: %w", dir, unwrapPath(err))
	}
	name := f.Name()
	cerr := f.Close()
	if err := errors.Join(cerr, os.Remove(name)); err != nil {
		return fmt.Errorf("data dir %s: not writable: %w", dir, unwrapPath(err))
	}
	return nil
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// listenHTTP binds the API port.
func listenHTTP(cfg Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.HTTPPort)))
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("http port %d: %w", cfg.HTTPPort, syscall.EADDRINUSE)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("bind address %s: %w", cfg.Bind, syscall.EADDRNOTAVAIL)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("http port %d: %w", cfg.HTTPPort, syscall.EACCES)
	case err != nil:
		return nil, fmt.Errorf("http port %d: %w", cfg.HTTPPort, err)
	}
	return sockio.Listen(ln), nil
}

// checkGossipPort makes sure the gossip port is free on TCP and UDP before
// recovery starts, so that a port in use is one clear line (the gossip
// layer's own error does not keep the cause).
func checkGossipPort(cfg Config) error {
	if cfg.GossipPort == 0 {
		return nil
	}
	addr := net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.GossipPort))
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", addr); err == nil {
			pc.Close()
		}
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("gossip port %d: %w", cfg.GossipPort, syscall.EADDRINUSE)
	case err != nil:
		return fmt.Errorf("gossip port %d: %w", cfg.GossipPort, err)
	}
	return nil
}

// newLogger is the node's logger on w, in the configured format and level.
// Every duration is logged the same way in both formats: as seconds, a
// number, under its key with "_seconds" added (took_seconds=0.046), as the
// metrics give them.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: durationsInSeconds}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationsInSeconds turns a duration attribute into seconds, rounded to
// the microsecond.
func durationsInSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	return slog.Float64(a.Key+"_seconds", math.Round(a.Value.Duration().Seconds()*1e6)/1e6)
}

// switchHandler answers for the node while it recovers (/healthz 200,
// everything else 503) and hands every request to the API once set.
type switchHandler struct {
	h atomic.Pointer[http.Handler]
}

func newSwitchHandler() *switchHandler { return &switchHandler{} }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.URL.Path == "/healthz" {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"status":"ok"}`)
		return
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `{"error":"the node is recovering its data","code":"unavailable"}`)
}

// absDir is dir made absolute for log lines; dir itself when that fails.
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// recentShareDen: with a memory bound, the cluster's recent writes (kept
// for peers that turn alive) take at most 1/recentShareDen of it.
const recentShareDen = 32

// clusterConfig maps the node settings onto the cluster's.
func clusterConfig(cfg Config, log *slog.Logger, reg prometheus.Registerer) cluster.Config {
	c := cluster.DefaultConfig()
	c.Name = cfg.Name
	c.Dir = filepath.Join(cfg.DataDir, "cluster")
	c.BindAddr = cfg.Bind
	c.AdvertiseAddr = cfg.Advertise
	c.GossipPort = cfg.GossipPort
	c.HTTPAddr = net.JoinHostPort(cfg.httpHost(), strconv.Itoa(cfg.HTTPPort))
	c.PeerTLS, _ = cfg.peerTLS() // checked by Validate
	if c.PeerTLS != nil {
		c.HTTPAddr = "https://" + c.HTTPAddr
	}
	c.Join = cfg.Join
	c.GossipInterval = cfg.GossipInterval
	c.GossipNodes = cfg.GossipNodes
	c.ProbeInterval = cfg.ProbeInterval
	c.ProbeTimeout = cfg.ProbeTimeout
	c.TombstoneTTL = cfg.TombstoneTTL
	c.Keys = cfg.ClusterKeys
	c.MaxKeyBytes = cfg.MaxKeyBytes
	c.MaxValueBytes = int(cfg.MaxValueBytes)
	c.AntiEntropyInterval = cfg.AntiEntropyInterval
	if cfg.MaxMemory > 0 {
		// Kept outside the engine's accounting: a share of the bound,
		// not the fixed default that a small bound could not spare.
		c.RecentBytes = int(min(int64(c.RecentBytes), cfg.MaxMemory/recentShareDen))
	}
	c.ReadySyncTimeout = cfg.ReadySyncTimeout
	c.MaxClockSkew = cfg.MaxClockSkew
	c.Logger = log.With("component", "cluster")
	c.Registerer = reg
	return c
}

// httpHost is the host peers use for this node's HTTP API: the advertised
// address, else the bind address, else (bound to every interface) the first
// private or loopback address of this machine.
func (c Config) httpHost() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	if ip := net.ParseIP(c.Bind); ip != nil && !ip.IsUnspecified() {
		return c.Bind
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsPrivate() {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// resolveAdvertise turns a host name given as --advertise into an IP
// address, which is what the gossip layer needs.
func resolveAdvertise(ctx context.Context, cfg *Config) error {
	if cfg.Advertise == "" || net.ParseIP(cfg.Advertise) != nil {
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, cfg.Advertise)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("advertise address %s: cannot resolve it: %v", cfg.Advertise, err)
	}
	cfg.Advertise = ips[0].IP.String()
	return nil
}

// reloadKeysOnHUP reads --cluster-key-file again on every SIGHUP and hands
// the keys to the running cluster node: keys are rotated without a restart
// (add the new key second, make it first, drop the old one, each step on
// every node). It returns a function that stops listening.
func reloadKeysOnHUP(cfg Config, cn *cluster.Node, log *slog.Logger) func() {
	if cfg.ClusterKeyFile == "" {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			keys, err := readKeyFile(cfg.ClusterKeyFile)
			if err == nil {
				err = cn.SetClusterKeys(keys)
			}
			if err != nil {
				log.Error("cluster keys not reloaded", "file", cfg.ClusterKeyFile, "err", err)
				continue
			}
			log.Info("cluster keys reloaded", "file", cfg.ClusterKeyFile, "keys", len(keys))
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// buildInfo is disperse_build_info: 1, labelled with the binary's version
// and the Go release that built it.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "disperse_build_info",
		Help: "1, labelled with the version of the binary and the Go release that built it.",
	}, []string{"version", "goversion"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	return g
}
