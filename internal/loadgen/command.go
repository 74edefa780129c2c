package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
)

// Exit statuses of Main, the same as the disperse binary's.
const (
	exitOK      = 0
	exitFailure = 1 // the run failed
	exitUsage   = 2 // bad command line
)

// Main runs `disperse bench` with args (the flags after "bench") until the
// run is over or ctx is done, prints the figures to stdout and returns the
// exit status: 0 after a run (or -h), 2 for a bad command line, printed on
// stderr with the usage or as one line, and 1 when the run failed, one line
// on stderr. With --serve-baseline it serves until ctx is done and returns 0.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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
	if err := runBenchCommand(ctx, bc, stdout); err != nil {
		fmt.Fprintf(stderr, "disperse bench: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// Usage prints the usage of `disperse bench` and its flags to w.
func Usage(w io.Writer) {
	fs, _ := benchFlags(w)
	fs.Usage()
}

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

// runBenchCommand serves the baseline, or measures the baseline, the target
// or both, and prints.
func runBenchCommand(ctx context.Context, bc *benchConfig, w io.Writer) error {
	if bc.serveBase != "" {
		return serveBaseline(ctx, bc.serveBase, w)
	}
	if bc.op == "blob" {
		return runBlobBench(ctx, bc, w)
	}
	return runCacheBench(ctx, bc, w)
}
