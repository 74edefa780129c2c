package blob

import "github.com/prometheus/client_golang/prometheus"

// metrics are the blob store's Prometheus counters.
type metrics struct {
	puts          prometheus.Counter
	putBytes      prometheus.Counter
	reads         prometheus.Counter
	reconstructed prometheus.Counter
	repairedBlock prometheus.Counter
	rebuiltShards prometheus.Counter
	removedOrphan prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "disperse", Subsystem: "blob", Name: name, Help: help})
	}
	m := &metrics{
		puts:          c("puts_total", "Blobs stored."),
		putBytes:      c("put_bytes_total", "Bytes of blob data stored."),
		reads:         c("reads_total", "Blob reads opened."),
		reconstructed: c("reconstructed_stripes_total", "Stripes read with a shard rebuilt from parity."),
		repairedBlock: c("repaired_blocks_total", "Shard blocks rewritten after failing their checksum."),
		rebuiltShards: c("rebuilt_shards_total", "Shards rebuilt onto another node after their holder was gone."),
		removedOrphan: c("removed_orphan_shards_total", "Local shard files removed because no manifest names them."),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.puts, m.putBytes, m.reads, m.reconstructed, m.repairedBlock, m.rebuiltShards, m.removedOrphan} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
