package blob

import "github.com/prometheus/client_golang/prometheus"

// metrics are the blob store's Prometheus metrics.
type metrics struct {
	puts             prometheus.Counter
	putSeconds       prometheus.Counter
	publishSeconds   prometheus.Counter
	putBytes         prometheus.Counter
	reads            prometheus.Counter
	reconstructed    prometheus.Counter
	repairedBlock    prometheus.Counter
	rebuiltShards    prometheus.Counter
	removedOrphan    prometheus.Counter
	holdersReplaced  prometheus.Counter
	shardsLost       prometheus.Counter
	checksumFailures prometheus.Counter
	blobs            *prometheus.GaugeVec
	scrubBytes       prometheus.Counter
	scrubPasses      prometheus.Counter
	scrubProgress    prometheus.Gauge
	scrubFound       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "disperse", Subsystem: "blob", Name: name, Help: help}
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts(opts(name, help)))
	}
	m := &metrics{
		puts:       c("puts_total", "Blobs stored."),
		putSeconds: c("put_seconds_total", "Time spent in blob PUTs that stored their blob, from the first byte to the answer."),
		publishSeconds: c("put_publish_seconds_total",
			"Of put_seconds_total, the time spent sending the new manifest to every other live node (read-after-write on every node)."),
		putBytes:      c("put_bytes_total", "Bytes of blob data stored."),
		reads:         c("reads_total", "Blob reads opened."),
		reconstructed: c("reconstructed_stripes_total", "Stripes read with a shard rebuilt from parity."),
		repairedBlock: c("repaired_blocks_total", "Shard blocks rewritten after failing their checksum."),
		rebuiltShards: c("rebuilt_shards_total",
			"Shards written anew from the others: onto another node after their holder was gone, onto a node that held none, or in place after the scrubber found them missing or damaged."),
		removedOrphan:    c("removed_orphan_shards_total", "Local shard files removed because no manifest names them."),
		holdersReplaced:  c("put_holders_replaced_total", "Chosen shard holders that did not answer a PUT and were replaced by the next node."),
		shardsLost:       c("put_shards_lost_total", "Shards given up during a PUT because their holder stopped answering; repair rebuilds them."),
		checksumFailures: c("read_checksum_failures_total", "Full blob reads whose bytes did not match the blob's sha256; the answer was cut."),
		blobs: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("blobs",
			"Blobs this node leads (ranks first for among the live nodes), by health at its last repair pass; summed over the nodes, every blob once.")),
			[]string{"health"}),
		scrubBytes:    c("scrub_bytes_total", "Bytes of shards read and verified by the scrubber."),
		scrubPasses:   c("scrub_passes_total", "Scrub passes finished."),
		scrubProgress: prometheus.NewGauge(prometheus.GaugeOpts(opts("scrub_pass_progress", "Share of the current (or last) scrub pass done, 0 to 1."))),
		scrubFound: prometheus.NewCounterVec(prometheus.CounterOpts(opts("scrub_found_total",
			"Damage the scrubber and the repair pass found on this node's shards: missing shards, corrupt blocks or shards.")),
			[]string{"problem"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.puts, m.putSeconds, m.publishSeconds, m.putBytes, m.reads, m.reconstructed, m.repairedBlock,
		m.rebuiltShards, m.removedOrphan, m.holdersReplaced, m.shardsLost, m.checksumFailures, m.blobs,
		m.scrubBytes, m.scrubPasses, m.scrubProgress, m.scrubFound} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
