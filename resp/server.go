package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves the Redis protocol over a Store. It is safe for concurrent
// use; Serve may run on several listeners.
type Server struct {
	cfg      Config
	store    Store
	commands []command
	byName   map[string]*command
	setCmd   *command // SET: what an event loop batches
	metrics  *metrics
	cursors  cursorTable
	started  time.Time

	// ctx is the context of every store call; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	nextID  atomic.Int64
	closing atomic.Bool

	mu        sync.Mutex
	conns     map[*conn]struct{}
	loop      *loop        // serves plain TCP connections; nil until the first
	noLoop    bool         // a goroutine serves every connection
	looped    atomic.Int64 // connections the loop serves
	listeners map[net.Listener]struct{}
	wg        sync.WaitGroup

	// Counters for INFO stats.
	totalConns    atomic.Int64
	totalCommands atomic.Int64
	rejected      atomic.Int64
	hits, misses  atomic.Int64
}

// New returns a server over store; it serves nothing until Serve.
func New(cfg Config, store Store) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		store:     store,
		started:   cfg.Now(),
		conns:     map[*conn]struct{}{},
		listeners: map[net.Listener]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.commands = commandTable()
	s.byName = make(map[string]*command, len(s.commands))
	for i := range s.commands {
		s.commands[i].index = i
		s.byName[s.commands[i].name] = &s.commands[i]
	}
	s.setCmd = s.byName["set"]
	for i := range s.commands { // what an event loop may run itself
		cmd := &s.commands[i]
		cmd.inline = !cmd.write && cmd.name != "keys" && cmd.name != "scan" && cmd.name != "randomkey"
	}
	s.metrics = newMetrics(len(s.commands), s.looped.Load)
	if err := s.metrics.register(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("%w: register metrics: %v", ErrConfig, err)
	}
	return s, nil
}

// Serve accepts connections on ln until Close or Shutdown, and then
// returns ErrClosed; any other accept error is returned as it is. It closes
// ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("resp: accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept starts serving nc, or refuses it when MaxClients are served.
func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.closing.Load() || len(s.conns) >= s.cfg.MaxClients {
		s.mu.Unlock()
		s.rejected.Add(1)
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte("-" + msgMaxClients + "\r\n"))
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.totalConns.Add(1)
	s.metrics.clients.Inc()
	looped := s.toLoop(c)
	s.mu.Unlock()
	if !looped {
		go func() {
			c.serve()
			s.finish(c)
		}()
	}
}

// finish forgets a connection that has ended.
func (s *Server) finish(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.clients.Dec()
	s.wg.Done()
}

// clients is how many connections are served.
func (s *Server) clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting connections, lets every connection finish the
// requests it has received (their replies are sent), closes them and
// waits; when ctx ends first, the rest are cut. The store stays open.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.wake()
	}
	if s.loop != nil {
		s.loop.wake()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("resp: connections cut at shutdown: %w", ctx.Err())
		s.closeConns()
		<-done
	}
	s.cancel()
	s.metrics.unregister(s.cfg.Registerer)
	return err
}

// Close stops the server at once: listeners and connections are closed,
// store calls in flight are cancelled.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}
