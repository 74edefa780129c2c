// Package loadgen is the load generator behind `disperse bench`. It drives
// a node's HTTP API from this machine and prints what it measured and, with
// --compare, the same measure of a bare baseline taken in the same run, so
// the node's figures come with a floor from the same machine at the same
// time.
//
// # What it measures
//
// The cache load (--op get, put or mixed) runs --clients concurrent
// keep-alive clients over one HTTP transport for --duration. Each client
// sends one request at a time to /cache/bench-NNNNNNNN, the key drawn
// uniformly from --keys by its own seeded generator; mixed is 90% GETs and
// 10% PUTs of --value-bytes. Before reads are measured every key is written
// once. Any answer other than 200 counts as an error, and a request cut off
// by the end of the run is not counted. Latencies go into a log-linear
// histogram (exact below 32 ns, then 32 buckets per power of two, so a
// quantile is at most about 3% below the true value) that is read for p50,
// p99 and the maximum. One line per target:
//
//	http://127.0.0.1:8000             41234 req/s  p50 1.42ms    p99 4.1ms     max 12.3ms    requests 412340 errors 0
//
// Scripts read the second field of a target's line (requests/s; the line
// holds " req/s ") and the field after "requests".
//
// The blob round trip (--op blob) PUTs one blob of --blob-bytes to
// /blob/{id}?data=k&parity=m, generated from --seed as it is sent (never held
// in memory), GETs it back, checks its length and sha256 against the bytes
// sent, and DELETEs it. Upload and download are timed from the request to the
// end of the answer and printed in MB/s (10^6 bytes per second). When the
// node's /metrics is open to it, it prints the share of the node's PUT time
// spent sending the manifest to the other nodes, and with --pid the peak resident memory (VmHWM) of that
// process over the run, its peak being reset before the run when Linux
// allows it.
//
// # The baselines
//
// The cache baseline is a bare gin router over a mutex-guarded map serving
// GET and PUT /cache/*key with the raw body: nothing durable, no index, no
// cluster. It runs in the load generator's process on a free loopback port,
// or in a process of its own (--serve-baseline host:port, loaded with
// --baseline-addr), where it competes for the machine as a node does.
//
// The blob baseline is a bare net/http handler that writes each PUT body to
// one file in a temporary directory and fsyncs it before answering, and
// serves that file to GET: no hashing, no erasure coding, no cluster.
//
// # Ratios
//
// --baseline measures only the baseline. --compare measures the baseline and
// then the target, back to back with the same flags, and prints target over
// baseline: for the cache, the fraction of the baseline's requests/s the node
// reached and its p50 and p99 as multiples of the baseline's; for blobs, the
// fractions of the baseline's upload and download MB/s. A ratio is 0 when
// its baseline figure is 0, and the cache line is left out when the baseline
// served nothing.
//
// The load generator sends traffic only to loopback addresses.
//
// # Usage
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	os.Exit(loadgen.Main(ctx, []string{"--compare", "--op", "put", "--duration", "10s"}, os.Stdout, os.Stderr))
package loadgen
