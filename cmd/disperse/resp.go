package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/internal/sockio"
	"github.com/disperse/disperse/resp"
	"github.com/prometheus/client_golang/prometheus"
)

// respListener is the Redis protocol server of a node and its listener.
type respListener struct {
	srv     *resp.Server
	addr    string
	timeout time.Duration // --shutdown-timeout
	served  chan error
}

// startRESP serves the Redis protocol over the cluster node on the bind
// address and --resp-port; nil when the port is 0. The client tokens and
// TLS of the HTTP API apply: with tokens, a connection must AUTH (or HELLO
// ... AUTH) first, and the token's scope gates commands.
func startRESP(cfg Config, cn *cluster.Node, eng *engine.Engine, log *slog.Logger, reg prometheus.Registerer) (*respListener, error) {
	if cfg.RESPPort == 0 {
		return nil, nil
	}
	var auth func(string) (string, bool)
	if tokens, err := cfg.clientTokens(); err != nil {
		return nil, err
	} else if tokens.Len() > 0 {
		auth = tokens.Authenticate
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	srv, err := resp.New(resp.Config{
		MaxKeyBytes:   cfg.MaxKeyBytes,
		MaxValueBytes: cfg.MaxValueBytes,
		MaxClients:    cfg.MaxConns,
		Authenticate:  auth,
		OOMError:      engine.ErrMemoryFull,
		Keys:          func() int { return eng.Stats().Keys },
		Fsync:         cfg.Fsync.String(),
		Version:       version,
		Logger:        log.With("component", "resp"),
		Registerer:    reg,
	}, cn)
	if err != nil {
		return nil, fmt.Errorf("resp: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.RESPPort)))
	if err != nil {
		srv.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			err = syscall.EADDRINUSE
		}
		return nil, fmt.Errorf("resp port %d: %w", cfg.RESPPort, err)
	}
	ln = sockio.Listen(ln)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	r := &respListener{srv: srv, addr: ln.Addr().String(), timeout: cfg.ShutdownTimeout, served: make(chan error, 1)}
	go func() { r.served <- srv.Serve(ln) }()
	log.Info("redis protocol listening", "resp", r.addr, "tls", tlsCfg != nil, "tokens", auth != nil)
	return r, nil
}

// stop lets the connections finish what they have sent, for up to
// --shutdown-timeout, then closes them.
func (r *respListener) stop(log *slog.Logger) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		log.Warn("redis protocol shutdown: connections cut", "err", err)
	}
	if err := <-r.served; err != nil && !errors.Is(err, resp.ErrClosed) {
		log.Warn("redis protocol listener", "err", err)
	}
}
