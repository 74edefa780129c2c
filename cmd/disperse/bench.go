package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchConfig is the load `disperse bench` puts on a node.
type benchConfig struct {
	addr       string        // base URL of the node; loopback only
	clients    int           // concurrent keep-alive clients
	duration   time.Duration // how long the measured run lasts
	valueBytes int           // size of each value written
	keys       int           // key space; get and mixed pre-populate all of it
	op         string        // get, put or mixed (90% get, 10% put)
	baseline   bool          // measure the in-process baseline instead of addr
	compare    bool          // measure the baseline, then addr, and print the ratio
	baseAddr   string        // a baseline already serving in its own process ("": start one here)
	serveBase  string        // serve the baseline on this address until interrupted
	timeout    time.Duration // per-request time limit
	blob       blobBench     // what --op blob uploads
	token      string        // bearer token sent with every request ("" for none)
	caFile     string        // PEM CA of an https node's certificate
}

// benchResult is what one run measured.
type benchResult struct {
	requests, errors uint64
	elapsed          time.Duration
	hist             histogram
	firstErr         string // the first error seen, for the report
}

func (r *benchResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

func benchFlags(out io.Writer) (*flag.FlagSet, *benchConfig) {
	bc := &benchConfig{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&bc.addr, "addr", "http://127.0.0.1:8000", "node to load (a loopback address)")
	fs.IntVar(&bc.clients, "clients", 64, "concurrent keep-alive clients")
	fs.DurationVar(&bc.duration, "duration", 10*time.Second, "length of the measured run")
	fs.IntVar(&bc.valueBytes, "value-bytes", 100, "size of each value")
	fs.IntVar(&bc.keys, "keys", 100000, "number of distinct keys")
	fs.StringVar(&bc.op, "op", "get", "get, put, mixed (90% get, 10% put) or blob (one upload and download)")
	fs.BoolVar(&bc.baseline, "baseline", false, "load an in-process gin handler over a mutex-guarded map instead of --addr")
	fs.BoolVar(&bc.compare, "compare", false, "load the baseline, then --addr, and print the ratio")
	fs.DurationVar(&bc.timeout, "timeout", 10*time.Second, "time limit of one request (not --op blob)")
	fs.StringVar(&bc.baseAddr, "baseline-addr", "", "with --compare: a baseline serving in its own process (see --serve-baseline) instead of one in this process")
	fs.StringVar(&bc.serveBase, "serve-baseline", "", "serve the baseline on this loopback host:port until interrupted, and load nothing")
	fs.StringVar(&bc.token, "token", "", "bearer token to send with every request")
	fs.StringVar(&bc.caFile, "cacert", "", "PEM CA that signed the certificate of an https:// --addr")
	addBlobFlags(fs, &bc.blob)
	fs.Usage = func() {
		fmt.Fprint(out, "usage: disperse bench [flags]\n\n"+
			"Drives GET/PUT /cache/{key} with concurrent keep-alive clients and prints\n"+
			"requests/s, p50, p99 and errors. --baseline and --compare measure a bare gin\n"+
			"handler over a map (in this process, or with --baseline-addr in its own), so\n"+
			"ratios come from one run.\n"+
			"--op blob PUTs one generated blob to /blob/{id}, GETs it back, checks its\n"+
			"sha256 and prints upload and download MB/s; its baseline writes the body to\n"+
			"one fsynced file and serves it back.\n\n")
		fs.PrintDefaults()
	}
	return fs, bc
}

func (bc *benchConfig) validate() error {
	switch {
	case bc.clients < 1:
		return errors.New("--clients must be at least 1")
	case bc.duration <= 0:
		return errors.New("--duration must be positive")
	case bc.valueBytes < 0:
		return errors.New("--value-bytes must not be negative")
	case bc.keys < 1:
		return errors.New("--keys must be at least 1")
	case bc.op != "get" && bc.op != "put" && bc.op != "mixed" && bc.op != "blob":
		return fmt.Errorf("--op %q is not get, put, mixed or blob", bc.op)
	}
	if bc.op == "blob" {
		if err := bc.blob.validate(); err != nil {
			return err
		}
	}
	if bc.serveBase != "" {
		return checkLoopback("http://" + bc.serveBase)
	}
	if bc.baseAddr != "" {
		if err := checkLoopback(bc.baseAddr); err != nil {
			return err
		}
	}
	if !bc.baseline {
		return checkLoopback(bc.addr)
	}
	return nil
}

// checkLoopback accepts only http and https URLs on a loopback address:
// the load generator never sends traffic off this machine.
func checkLoopback(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--addr %q is not an http://host:port or https://host:port URL", addr)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return fmt.Errorf("--addr %q is not a loopback address; bench loads only this machine", addr)
	}
	return nil
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	fs, bc := benchFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := bc.validate(); err != nil {
		fmt.Fprintf(stderr, "disperse bench: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runBenchCommand(ctx, bc, stdout); err != nil {
		fmt.Fprintf(stderr, "disperse bench: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// runBenchCommand measures the baseline, the target or both, and prints.
func runBenchCommand(ctx context.Context, bc *benchConfig, w io.Writer) error {
	if bc.serveBase != "" {
		return serveBaseline(ctx, bc.serveBase, w)
	}
	if bc.op == "blob" {
		return runBlobBench(ctx, bc, w)
	}
	fmt.Fprintf(w, "op=%s clients=%d duration=%s value=%dB keys=%d\n",
		bc.op, bc.clients, bc.duration, bc.valueBytes, bc.keys)
	var base *benchResult
	if bc.baseline || bc.compare {
		addr, stop := strings.TrimSuffix(bc.baseAddr, "/"), func() {}
		var err error
		if addr == "" {
			if addr, stop, err = startBaseline(); err != nil {
				return err
			}
		}
		base, err = benchTarget(ctx, bc, addr)
		stop()
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		printResult(w, "baseline (gin + map)", base)
		if bc.baseline {
			return nil
		}
	}
	r, err := benchTarget(ctx, bc, strings.TrimSuffix(bc.addr, "/"))
	if err != nil {
		return err
	}
	printResult(w, bc.addr, r)
	if base != nil && base.rps() > 0 {
		fmt.Fprintf(w, "ratio target/baseline: %.3f of the requests/s, p50 x%.2f, p99 x%.2f\n",
			r.rps()/base.rps(),
			ratio(r.hist.quantile(0.5), base.hist.quantile(0.5)),
			ratio(r.hist.quantile(0.99), base.hist.quantile(0.99)))
	}
	return nil
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func printResult(w io.Writer, name string, r *benchResult) {
	fmt.Fprintf(w, "%-28s %10.0f req/s  p50 %-9s p99 %-9s max %-9s requests %d errors %d\n",
		name, r.rps(), round(r.hist.quantile(0.5)), round(r.hist.quantile(0.99)),
		round(r.hist.quantile(1)), r.requests, r.errors)
	if r.firstErr != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.firstErr)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// benchTarget pre-populates the keys when reads are measured, then runs the
// load for bc.duration against base.
func benchTarget(ctx context.Context, bc *benchConfig, base string) (*benchResult, error) {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        bc.clients * 2,
		MaxIdleConnsPerHost: bc.clients * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	if bc.caFile != "" {
		pem, err := os.ReadFile(bc.caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", bc.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	defer tr.CloseIdleConnections()
	l := &loader{cfg: bc, base: base, client: &http.Client{Transport: tr, Timeout: bc.timeout},
		value: bytes.Repeat([]byte("v"), bc.valueBytes)}
	if bc.token != "" {
		l.auth = []string{"Bearer " + bc.token}
	}
	if bc.op != "put" {
		if err := l.populate(ctx); err != nil {
			return nil, err
		}
	}
	return l.load(ctx), nil
}

// loader sends the requests of one run.
type loader struct {
	cfg    *benchConfig
	base   string
	client *http.Client
	value  []byte
	auth   []string // the Authorization header, nil for none
}

func (l *loader) keyURL(i int) string { return fmt.Sprintf("%s/cache/bench-%08d", l.base, i) }

// populate writes every key once, with all clients.
func (l *loader) populate(ctx context.Context) error {
	var next atomic.Int64
	errc := make(chan error, l.cfg.clients)
	var wg sync.WaitGroup
	for range l.cfg.clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= l.cfg.keys {
					return
				}
				if err := l.put(ctx, i); err != nil {
					errc <- fmt.Errorf("pre-populating key %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

// load runs every client until the duration is over and merges what they
// measured.
func (l *loader) load(ctx context.Context) *benchResult {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.duration)
	defer cancel()
	results := make([]benchResult, l.cfg.clients)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range results {
		wg.Go(func() { l.client1(ctx, uint64(c), &results[c]) })
	}
	wg.Wait()
	total := &benchResult{elapsed: time.Since(start)}
	for i := range results {
		r := &results[i]
		total.requests += r.requests
		total.errors += r.errors
		total.hist.merge(&r.hist)
		if total.firstErr == "" {
			total.firstErr = r.firstErr
		}
	}
	return total
}

// client1 is one client: one request at a time until ctx is done. A request
// cut short by the end of the run is not counted.
func (l *loader) client1(ctx context.Context, seed uint64, r *benchResult) {
	rng := rand.New(rand.NewPCG(seed, 0x6469737065727365))
	for {
		i := rng.IntN(l.cfg.keys)
		put := l.cfg.op == "put" || (l.cfg.op == "mixed" && rng.IntN(10) == 0)
		t0 := time.Now()
		var err error
		if put {
			err = l.put(ctx, i)
		} else {
			err = l.get(ctx, i)
		}
		if ctx.Err() != nil {
			return
		}
		r.hist.record(time.Since(t0))
		r.requests++
		if err != nil {
			r.errors++
			if r.firstErr == "" {
				r.firstErr = err.Error()
			}
		}
	}
}

func (l *loader) put(ctx context.Context, i int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, l.keyURL(i), bytes.NewReader(l.value))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	return l.do(req)
}

func (l *loader) get(ctx context.Context, i int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.keyURL(i), nil)
	if err != nil {
		return err
	}
	return l.do(req)
}

// do sends req and reads the whole answer so the connection is reused.
func (l *loader) do(req *http.Request) error {
	if l.auth != nil {
		req.Header["Authorization"] = l.auth
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return err
}
