package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of a Client.
const (
	// DefaultTimeout bounds each attempt's connecting, and every stretch of
	// an attempt in which no byte moves; never a whole transfer.
	DefaultTimeout = 30 * time.Second
	// DefaultRetries is how many times a failed idempotent request is tried
	// again.
	DefaultRetries = 3
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait before a retry:
	// it doubles from the first to the second, with jitter.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultMaxAnswerBytes bounds a cache value or a JSON answer the
	// client reads into memory (blob downloads stream and are not bounded).
	DefaultMaxAnswerBytes = 64 << 20
)

// Client talks to one Disperse node over its HTTP API. It is safe for
// concurrent use; make one and reuse it, so connections are kept alive.
type Client struct {
	base       string // scheme://host[:port][/path], no trailing slash
	hc         *http.Client
	token      string
	userAgent  string
	timeout    time.Duration
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	maxAnswer  int64
	// sleep waits d or until ctx is done; tests replace it to see the
	// waits a client chooses without spending them.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

// settings collect the options before New builds the Client.
type settings struct {
	token       string
	userAgent   string
	timeout     time.Duration
	retries     int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	maxAnswer   int64
	hc          *http.Client
	tlsConfig   *tls.Config
	rootCAs     *x509.CertPool
	clientCerts []tls.Certificate
}

// Option configures a Client made by New.
type Option func(*settings) error

// WithToken sends "Authorization: Bearer token" with every request; an
// empty token sends none.
func WithToken(token string) Option {
	return func(s *settings) error { s.token = token; return nil }
}

// WithTimeout bounds each attempt's connecting (and TLS handshake), the
// wait for an answer once the request is sent, and every stretch of a
// transfer in which no byte moves. A slow but steady transfer may take any
// time. Default DefaultTimeout; 0 turns the bound off.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("client: negative timeout %v", d)
		}
		s.timeout = d
		return nil
	}
}

// WithRetries sets how many times a failed idempotent request is tried
// again (default DefaultRetries; 0: never).
func WithRetries(n int) Option {
	return func(s *settings) error {
		if n < 0 {
			return fmt.Errorf("client: negative retries %d", n)
		}
		s.retries = n
		return nil
	}
}

// WithBackoff sets the first and the longest wait before a retry (defaults
// DefaultMinBackoff and DefaultMaxBackoff).
func WithBackoff(first, longest time.Duration) Option {
	return func(s *settings) error {
		if first <= 0 || longest < first {
			return fmt.Errorf("client: backoff %v..%v: want 0 < first <= longest", first, longest)
		}
		s.minBackoff, s.maxBackoff = first, longest
		return nil
	}
}

// WithMaxAnswerBytes bounds what one cache value or JSON answer may take
// in memory (default DefaultMaxAnswerBytes); a longer one fails the call
// with ErrAnswerTooLarge. Blob downloads stream and are not bounded.
func WithMaxAnswerBytes(n int64) Option {
	return func(s *settings) error {
		if n < 1 {
			return fmt.Errorf("client: answer bound %d: want at least 1", n)
		}
		s.maxAnswer = n
		return nil
	}
}

// WithHTTPClient sends the requests through hc. TLS options cannot be
// combined with it: configure hc's transport instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error { s.hc = hc; return nil }
}

// WithTLSConfig uses cfg for https addresses; WithCAFile, WithCAPool and
// WithClientCert add to a copy of it.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(s *settings) error { s.tlsConfig = cfg.Clone(); return nil }
}

// WithCAPool trusts the certificates of pool (instead of the system's) for
// the node's certificate.
func WithCAPool(pool *x509.CertPool) Option {
	return func(s *settings) error { s.rootCAs = pool; return nil }
}

// WithCAFile trusts the PEM certificates in file (instead of the system's)
// for the node's certificate.
func WithCAFile(file string) Option {
	return func(s *settings) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("CA file %s: no PEM certificate in it", file)
		}
		s.rootCAs = pool
		return nil
	}
}

// WithClientCert presents the PEM certificate and key in certFile and
// keyFile to nodes that require client certificates.
func WithClientCert(certFile, keyFile string) Option {
	return func(s *settings) error {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		s.clientCerts = append(s.clientCerts, pair)
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "disperse-client").
func WithUserAgent(ua string) Option {
	return func(s *settings) error { s.userAgent = ua; return nil }
}

// New returns a client of the node at addr: "http://host:port",
// "https://host:port", or a bare "host:port" (http). A path in addr is
// kept as the prefix of every route, for a node behind a proxy.
func New(addr string, opts ...Option) (*Client, error) {
	base, err := BaseURL(addr)
	if err != nil {
		return nil, err
	}
	s := settings{
		userAgent:  "disperse-client",
		timeout:    DefaultTimeout,
		retries:    DefaultRetries,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		maxAnswer:  DefaultMaxAnswerBytes,
	}
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, err
	}
	return &Client{
		base:       base,
		hc:         hc,
		token:      s.token,
		userAgent:  s.userAgent,
		timeout:    s.timeout,
		retries:    s.retries,
		minBackoff: s.minBackoff,
		maxBackoff: s.maxBackoff,
		maxAnswer:  s.maxAnswer,
		sleep:      sleepCtx,
		now:        time.Now,
	}, nil
}

// Addr is the node's base URL, as requests use it.
func (c *Client) Addr() string { return c.base }

// BaseURL checks addr as New reads it and gives it in the form requests use:
// a scheme (http when it has none), no trailing slash.
func BaseURL(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", errors.New("client: empty address")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "", fmt.Errorf("client: address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("client: address %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: address %q has no host", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("client: address %q: no query or fragment, please", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// httpClient is the given client, or a new one with its own transport
// (keep-alive, TLS as configured).
func (s *settings) httpClient() (*http.Client, error) {
	wantTLS := s.tlsConfig != nil || s.rootCAs != nil || len(s.clientCerts) > 0
	if s.hc != nil {
		if wantTLS {
			return nil, errors.New("client: WithHTTPClient cannot be combined with TLS options")
		}
		return s.hc, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if wantTLS {
		cfg := s.tlsConfig
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if s.rootCAs != nil {
			cfg.RootCAs = s.rootCAs
		}
		cfg.Certificates = append(cfg.Certificates, s.clientCerts...)
		tr.TLSClientConfig = cfg
	}
	// The attempt's watchdog bounds the handshake; the transport's own
	// limit would cut a slow one short of the client's timeout.
	tr.TLSHandshakeTimeout = 0
	return &http.Client{Transport: tr}, nil
}
