package httpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxConns is how many client connections a node holds open at once
// by default. Each costs a goroutine and two 4 KiB buffers while idle, so
// the default holds about 64 MiB at most, and stays below the usual limit
// of open files.
const DefaultMaxConns = 4096

// Bounds of the answers to connections beyond the limit.
const (
	// maxRefusing is how many refused connections are answered at once;
	// beyond it a refused connection is closed without an answer.
	maxRefusing = 64
	// refuseTimeout bounds the answer to one refused connection,
	// handshake included.
	refuseTimeout = 2 * time.Second
	// refuseDrainBytes is the most read from a refused connection, so the
	// close does not reset it before the client has read the answer.
	refuseDrainBytes = 64 << 10
)

// ListenerConfig configures Listen.
type ListenerConfig struct {
	// MaxConns is the most connections open at once; the next one is
	// answered 503 unavailable with Retry-After and closed. Default
	// DefaultMaxConns; negative: no limit.
	MaxConns int
	// TLS, when set, makes every connection TLS with this configuration
	// (LoadTLS), the refusals too.
	TLS *tls.Config
	// Registerer receives the connection metrics. Default: none.
	Registerer prometheus.Registerer
	// Logger receives a line when connections start being refused.
	// Default: discard.
	Logger *slog.Logger
}

// Listen wraps ln, the API's listener, with the connection limit and TLS.
// With TLS only HTTP/1.1 is offered, so one connection carries one request
// at a time and the limit bounds the requests in flight as well.
func Listen(ln net.Listener, cfg ListenerConfig) (net.Listener, error) {
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &limitListener{Listener: ln, max: int64(cfg.MaxConns), tls: cfg.TLS, log: cfg.Logger,
		refusing: make(chan struct{}, maxRefusing)}
	if cfg.MaxConns < 0 {
		l.max = 1<<63 - 1
	}
	if l.tls != nil {
		l.tls = l.tls.Clone()
		l.tls.NextProtos = []string{"http/1.1"}
	}
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "disperse_http_connections_refused_total",
		Help: "Client connections refused (503) because --max-conns were open.",
	})
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "disperse_http_connections_open",
		Help: "Client connections open on the API port.",
	}, func() float64 { return float64(l.open.Load()) })
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.refused, open} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("httpd: registering connection metrics: %w", err)
			}
		}
	}
	l.busy = busyAnswer()
	return l, nil
}

// limitListener is the listener of Listen.
type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	tls      *tls.Config
	log      *slog.Logger
	refusing chan struct{} // a slot per refusal being answered
	refused  prometheus.Counter
	busy     []byte       // the whole 503 answer
	warned   atomic.Int64 // unix seconds of the last log line
}

// Accept returns the next connection within the limit; the ones beyond it
// are answered and closed on the way.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refuse(c)
			continue
		}
		var conn net.Conn = &limitConn{Conn: c, l: l}
		if l.tls != nil {
			conn = tls.Server(conn, l.tls)
		}
		return conn, nil
	}
}

// refuse answers a connection beyond the limit with 503, in a goroutine of
// its own so Accept goes on; when maxRefusing are being answered already it
// closes the connection at once.
func (l *limitListener) refuse(c net.Conn) {
	l.refused.Inc()
	if now := time.Now().Unix(); l.warned.Load() < now-60 {
		l.warned.Store(now)
		l.log.Warn("refusing client connections: --max-conns are open", "max_conns", l.max)
	}
	select {
	case l.refusing <- struct{}{}:
		go func() {
			defer func() { <-l.refusing }()
			l.answerBusy(c)
		}()
	default:
		c.Close()
	}
}

// answerBusy writes the 503 answer, half-closes, and reads what the client
// sent until it closes too (or the time is up), so the client reads the
// answer rather than a connection reset.
func (l *limitListener) answerBusy(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	var conn net.Conn = c
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		if tc.Handshake() != nil {
			return
		}
		conn = tc
	}
	// Answer once the request has come: an answer before it confuses
	// clients that do not expect one yet.
	if !readRequestHead(conn) {
		return
	}
	if _, err := conn.Write(l.busy); err != nil {
		return
	}
	if tc, ok := conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok { // a TCP conn, raw or not
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, refuseDrainBytes))
}

// readRequestHead reads from c up to the blank line that ends a request's
// head, at most refuseDrainBytes; false when the client sends none.
func readRequestHead(c net.Conn) bool {
	buf := make([]byte, 4096)
	var tail [3]byte // the last bytes of the previous read
	total := 0
	for total < refuseDrainBytes {
		n, err := c.Read(buf)
		if n > 0 {
			joined := append(tail[:0:0], tail[:]...)
			joined = append(joined, buf[:n]...)
			if bytes.Contains(joined, []byte("\r\n\r\n")) {
				return true
			}
			copy(tail[:], joined[len(joined)-3:])
			total += n
		}
		if err != nil {
			return false
		}
	}
	return true
}

// busyAnswer is the whole HTTP answer to a refused connection.
func busyAnswer() []byte {
	body := errorJSON("the node has too many connections open; retry", CodeUnavailable)
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: " + contentTypeJSON + "\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
}

// limitConn is a connection within the limit; closing it makes room.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite half-closes the connection where the transport can.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
