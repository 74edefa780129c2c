package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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

// runCacheBench measures the GET and PUT /cache load on the baseline, the
// target or both, and prints.
func runCacheBench(ctx context.Context, bc *benchConfig, w io.Writer) error {
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
