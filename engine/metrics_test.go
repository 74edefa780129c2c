package engine

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t.TempDir())
	cfg.Registerer = reg
	e := openTest(t, cfg)
	mustApply(t, e, put("a", "1", ver(1, 0, 1)), put("b", "2", ver(1, 0, 1)), del("c", ver(1, 0, 1)))
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	values := map[string]float64{}
	for _, f := range families {
		names[f.GetName()] = true
		if m := f.GetMetric(); len(m) == 1 && m[0].GetGauge() != nil {
			values[f.GetName()] = m[0].GetGauge().GetValue()
		}
	}
	for _, want := range []string{"disperse_keys", "disperse_tombstones", "disperse_wal_bytes",
		"disperse_wal_fsync_seconds", "disperse_snapshot_seconds", "disperse_expired_entries_total",
		"disperse_memory_used_bytes", "disperse_memory_budget_bytes", "disperse_memory_max_bytes",
		"disperse_resident_memory_bytes", "disperse_eviction_stubs", "disperse_evictions_total",
		"disperse_cache_hits_total", "disperse_cache_misses_total"} {
		if !names[want] {
			t.Errorf("metric %s missing", want)
		}
	}
	if got := values["disperse_keys"]; got != 2 {
		t.Errorf("disperse_keys = %v, want 2", got)
	}
	if got := values["disperse_tombstones"]; got != 1 {
		t.Errorf("disperse_tombstones = %v, want 1", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Close unregisters, so a restarted engine can register again.
	cfg.Registerer = reg
	openTest(t, cfg)
}
