package cluster

import (
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsRegisterAndCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newTestCluster(t, 2, func(cfg *Config, _ *engine.Config) {
		if cfg.Name == "node-0" {
			cfg.Registerer = reg
		}
	})
	put(t, c.nodes[0].node, "k", "v")
	c.waitValue(5*time.Second, "k", []byte("v"))
	waitFor(t, 5*time.Second, "a batch counted as sent", func() bool {
		return counterValue(t, c.nodes[0].node.metrics.batchesSent) >= 1
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if got["disperse_cluster_members/alive"] != 2 {
		t.Fatalf("alive members metric = %v, want 2 (all: %v)", got["disperse_cluster_members/alive"], got)
	}
	for _, name := range []string{
		"disperse_cluster_replication_entries_sent_total",
		"disperse_cluster_replication_queue_depth",
		"disperse_cluster_in_sync",
		"disperse_cluster_replication_entries_dropped_total",
	} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s not registered", name)
		}
	}
	// A restarted node registers again in the same registry.
	c.stop(0)
	c.start(0)
}
