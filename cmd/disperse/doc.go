// Command disperse runs a Disperse node, loads one with requests, and talks
// to one from scripts.
//
// Usage:
//
//	disperse serve [flags]      run a node
//	disperse bench [flags]      load a node's HTTP API and print requests/s and latency
//	disperse version            print the version
//	disperse help [serve|bench] print the usage, or a command's flags
//	disperse get|put|del|ttl|ls|members|ready|blob|context|completion ...
//	                            client commands (see disperse help and README.md)
//
// The client commands (cli*.go) are parsed by kong and make every request
// through the client package. Exit status: 0, 1 for a failed request, 2 for
// a bad command line; errors are one line on stderr (JSON with --json).
//
// # serve
//
// Every setting has a flag and an environment variable; the flag wins over
// the variable and the variable over the default. `disperse serve --help`
// lists them all:
//
//	--gossip-port        PORT                7946
//	--http-port          HTTP_PORT           8000
//	--join               PEER                none (comma-separated host:port)
//	--name               NODE_NAME           the host name
//	--bind               BIND_ADDR           127.0.0.1
//	--advertise          ADVERTISE_ADDR      derived from --bind
//	--data-dir           DATA_DIR            ./data
//	--fsync              FSYNC               always (always, everysec, never)
//	--snapshot-interval  SNAPSHOT_INTERVAL   60s
//	--snapshot-wal-bytes SNAPSHOT_WAL_BYTES  64MiB
//	--gossip-interval    GOSSIP_INTERVAL     memberlist LAN default
//	--gossip-nodes       GOSSIP_NODES        memberlist LAN default
//	--probe-interval     PROBE_INTERVAL      memberlist LAN default
//	--probe-timeout      PROBE_TIMEOUT       memberlist LAN default
//	--max-key-bytes      MAX_KEY_BYTES       1024
//	--max-value-bytes    MAX_VALUE_BYTES     1MiB
//	--blob-data-shards   BLOB_DATA_SHARDS    4
//	--blob-parity-shards BLOB_PARITY_SHARDS  2
//	--tombstone-ttl      TOMBSTONE_TTL       24h
//	--log-level          LOG_LEVEL           info (debug, info, warn, error)
//	--log-format         LOG_FORMAT          text (text, json)
//	--shutdown-timeout   SHUTDOWN_TIMEOUT    10s
//
// Durations take Go syntax (300ms, 5s); sizes take plain bytes or a whole
// number with KiB, MiB or GiB.
//
// Start: the node listens on the HTTP port first (answering /healthz 200 and
// everything else 503 while it recovers), recovers the engine from
// --data-dir and logs one "recovered" line (entries, time taken, bytes cut
// off a torn log tail), starts the cluster node and the blob store, and only
// then serves the API and answers /readyz 200. Logs go to stderr.
//
// Stop: SIGTERM or SIGINT stops accepting connections, waits up to
// --shutdown-timeout for the requests in flight, stops the blob store, leaves
// the cluster and closes the engine (last snapshot, fsync). A second signal
// kills the process at once.
//
// Exit status: 0 after a clean stop; 2 for a bad command line or setting,
// printed as one line naming the flag (and the variable when the value came
// from there), for example
//
//	disperse serve: bad setting --snapshot-interval (from SNAPSHOT_INTERVAL): "60" is not a duration (e.g. 300ms, 5s, 1h)
//
// and 1 when the node cannot start or fails while running, also one line:
//
//	disperse serve: http port 8000: address already in use
//	disperse serve: data dir ./data: locked by another running node: ...
//	disperse serve: data dir ./data: not writable: permission denied
//
// # bench
//
//	disperse bench --addr http://127.0.0.1:8000 --clients 64 --duration 10s \
//	    --value-bytes 100 --keys 100000 --op get|put|mixed [--baseline|--compare]
//
// drives GET and PUT /cache/bench-NNNNNNNN with --clients concurrent
// keep-alive clients (one transport, enough idle connections for all) for
// --duration, after writing every key once when reads are measured, and
// prints requests/s, p50, p99, the maximum and the errors (any answer other
// than 200). mixed is 90% gets and 10% puts. Latencies go into a log-linear
// histogram (about 3% precision).
//
// --baseline measures instead a bare gin router over a mutex-guarded map
// serving the same routes, started in the same process on 127.0.0.1:0;
// --compare measures the baseline and then --addr, back to back, and prints
// the ratio, so both figures come from the same run on the same machine.
// --addr must be a loopback address: bench never sends load off the machine.
// The load generator and its baselines are package internal/loadgen.
package main
