package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors. They exist whether or not
// a Registerer is configured, so the code that feeds them never branches.
type metrics struct {
	fsync      prometheus.Histogram
	snapshot   prometheus.Histogram
	running    prometheus.Gauge // 1 while a snapshot transaction is being written
	registered []prometheus.Collector
}

func newMetrics() *metrics {
	return &metrics{
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "disperse_wal_fsync_seconds",
			Help:    "Duration of the log's fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		snapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "disperse_snapshot_seconds",
			Help:    "Duration of snapshots, from the dirty-set swap to the commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "disperse_snapshot_in_progress",
			Help: "1 while a snapshot is being written to disk, else 0.",
		}),
	}
}

// register adds every collector to r (nothing when r is nil).
func (m *metrics) register(r prometheus.Registerer, e *Engine) error {
	if r == nil {
		return nil
	}
	cs := []prometheus.Collector{
		m.fsync,
		m.snapshot,
		m.running,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_keys", Help: "Live keys held (values, not tombstones or expiry markers).",
		}, func() float64 { return float64(e.ix.keys.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_tombstones", Help: "Tombstones and expiry markers held.",
		}, func() float64 { return float64(e.ix.tombs.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_wal_bytes", Help: "Bytes of the write-ahead log on disk.",
		}, func() float64 { return float64(e.wal.Size()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "disperse_expired_entries_total", Help: "Values expired, and tombstones, expiry markers and local slots collected.",
		}, func() float64 { return float64(e.ix.expired.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_memory_used_bytes", Help: "Memory the accounting charges for the index (keys, values, their structures).",
		}, func() float64 { return float64(e.ix.used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_memory_budget_bytes", Help: "The most the accounting may charge for the index (a share of --max-memory); 0 without a bound.",
		}, func() float64 { return float64(e.budget) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_memory_max_bytes", Help: "The node's memory bound (--max-memory); 0 without one.",
		}, func() float64 { return float64(e.cfg.MaxMemory) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_resident_memory_bytes", Help: "The process's resident memory as the operating system counts it.",
		}, func() float64 { return float64(processResident()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_eviction_stubs", Help: "Keys whose value was evicted, kept as stubs (key, version, expiry).",
		}, func() float64 { return float64(e.ix.stubs.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "disperse_evictions_total", Help: "Evictions at the memory bound, by reason: value (a value became a stub), stub (a stub was dropped).",
			ConstLabels: prometheus.Labels{"reason": "value"},
		}, func() float64 { return float64(e.ix.evicted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "disperse_evictions_total", Help: "Evictions at the memory bound, by reason: value (a value became a stub), stub (a stub was dropped).",
			ConstLabels: prometheus.Labels{"reason": "stub"},
		}, func() float64 { return float64(e.ix.stubsDropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "disperse_cache_hits_total", Help: "Reads that found a visible value.",
		}, func() float64 { return float64(e.hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "disperse_cache_misses_total", Help: "Reads of absent, deleted, expired or evicted keys.",
		}, func() float64 { return float64(e.misses.Load()) }),
	}
	for i, c := range cs {
		if err := r.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.Unregister(done)
			}
			return fmt.Errorf("engine: register metrics: %w", err)
		}
	}
	m.registered = cs
	return nil
}

func (m *metrics) unregister(r prometheus.Registerer) {
	for _, c := range m.registered {
		r.Unregister(c)
	}
}
