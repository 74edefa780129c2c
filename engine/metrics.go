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
