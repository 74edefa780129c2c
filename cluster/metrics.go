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
	entriesStale    prometheus.Counter
	aeRounds        prometheus.Counter
	aeBuckets       prometheus.Counter
	aeRepaired      prometheus.Counter
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
		batchesFailed:   counter("replication_batches_failed_total", "Replication batches whose send failed (entries left to anti-entropy)."),
		entriesDropped:  counter("replication_entries_dropped_total", "Entries not sent to a peer: its queue was full or the send failed."),
		batchesReceived: counter("replication_batches_received_total", "Replication and repair batches received from peers."),
		entriesReceived: counter("replication_entries_received_total", "Entries received from peers."),
		entriesStale:    counter("replication_entries_stale_total", "Received entries dropped by the tombstone rule (older than the tombstone TTL, key absent)."),
		aeRounds:        counter("antientropy_rounds_total", "Push/pull digest comparisons merged."),
		aeBuckets:       counter("antientropy_buckets_differing_total", "Buckets found differing in anti-entropy rounds."),
		aeRepaired:      counter("antientropy_entries_repaired_total", "Entries received by anti-entropy that won on this node."),
	}
	m.collectors = []prometheus.Collector{
		m.batchesSent, m.entriesSent, m.batchesFailed, m.entriesDropped,
		m.batchesReceived, m.entriesReceived, m.entriesStale,
		m.aeRounds, m.aeBuckets, m.aeRepaired,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "replication_queue_depth",
			Help: "Entries queued for peers, all peers together.",
		}, func() float64 { return float64(n.queueDepth()) }),
	}
	for _, state := range []string{StateAlive, StateSuspect, StateDead, StateLeft} {
		m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "disperse", Subsystem: "cluster", Name: "members",
			Help:        "Known members by state, this node included.",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 { return float64(n.countMembers(state)) }))
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
