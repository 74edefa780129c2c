package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus series. They exist (and count) even
// when no Registerer is configured.
type metrics struct {
	batchesSent     prometheus.Counter
	entriesSent     prometheus.Counter
	batchesFailed   prometheus.Counter
	entriesDropped  prometheus.Counter
	batchesReceived prometheus.Counter
	entriesReceived prometheus.Counter
	aeRepaired      prometheus.Counter
	purged          prometheus.Counter
	syncs           *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	peerClock       *prometheus.GaugeVec
	collectors      []prometheus.Collector
}

func newMetrics(n *Node) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: name, Help: help,
		})
	}
	m := &metrics{
		batchesSent:     counter("replication_batches_sent_total", "Replication batches sent to peers."),
		entriesSent:     counter("replication_entries_sent_total", "Entries sent to peers in replication batches."),
		batchesFailed:   counter("replication_batches_failed_total", "Replication batches whose send failed (entries left to the sync)."),
		entriesDropped:  counter("replication_entries_dropped_total", "Entries not sent to a peer: its queue was full or the send failed."),
		batchesReceived: counter("replication_batches_received_total", "Replication batches received from peers."),
		entriesReceived: counter("replication_entries_received_total", "Entries received from peers, by replication and by sync."),
		aeRepaired:      counter("antientropy_entries_repaired_total", "Entries received by a sync that won on this node."),
		purged:          counter("antientropy_entries_purged_total", "Entries a stale node dropped because the cluster no longer holds them."),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "syncs_total",
			Help: "Syncs with a peer this node started, by result (ok, error).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "peer_rejected_total",
			Help: "Entries and messages refused from peers, by reason (clock_skew, bad_entry, bad_message).",
		}, []string{"reason"}),
		peerClock: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "peer_clock_offset_seconds",
			Help: "How far each peer's clock was ahead of this node's (negative: behind) in its last batch.",
		}, []string{"peer"}),
	}
	m.collectors = []prometheus.Collector{
		m.batchesSent, m.entriesSent, m.batchesFailed, m.entriesDropped,
		m.batchesReceived, m.entriesReceived, m.aeRepaired, m.purged,
		m.syncs, m.rejected, m.peerClock,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "replication_queue_depth",
			Help: "Entries queued for peers, all peers together.",
		}, func() float64 { return float64(n.rep.depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "in_sync",
			Help: "1 while the node was in sync with the cluster within the tombstone TTL, else 0.",
		}, func() float64 {
			if n.fresh() {
				return 1
			}
			return 0
		}),
	}
	for _, state := range []string{StateAlive, StateSuspect, StateDead, StateLeft} {
		m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "members",
			Help:        "Known members by state, this node included.",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 { return float64(n.mem.count(state)) }))
	}
	return m
}

// register adds every series to r (nil: none).
func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	for _, c := range m.collectors {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// unregister removes every series from r.
func (m *metrics) unregister(r prometheus.Registerer) {
	if r == nil {
		return
	}
	for _, c := range m.collectors {
		r.Unregister(c)
	}
}
