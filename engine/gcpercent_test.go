package engine

import (
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"

	"github.com/disperse/disperse/internal/memtrim"
)

// TestRecoveryGivesItsGarbageBack: a recovery runs under a raised GOGC, so
// the heap may grow to several times the index while it runs; once the
// engine is open, what is not live has been collected and given back.
func TestRecoveryGivesItsGarbageBack(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and recovers 200,000 keys")
	}
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentBytes = 64 << 20
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const keys, batch = 200_000, 1000
	value := make([]byte, 100)
	ents := make([]Entry, batch)
	for i := 0; i < keys; i += batch {
		for j := range ents {
			ents[j] = Entry{Key: fmt.Sprint("k", i+j), Value: value, Version: ver(int64(i+j), 0, 1)}
		}
		mustApply(t, e, ents...)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	e = openTest(t, cfg)
	if n := e.Stats().Keys; n != keys {
		t.Fatalf("%d keys recovered, want %d", n, keys)
	}
	live := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(live)
	heap := memtrim.HeapBytes()
	t.Logf("after recovery: heap %d MiB, live %d MiB", heap>>20, live[0].Value.Uint64()>>20)
	if notLive := heap - min(heap, live[0].Value.Uint64()); notLive > 16<<20 {
		t.Errorf("the heap holds %d MiB beyond the live %d MiB once recovered", notLive>>20, live[0].Value.Uint64()>>20)
	}
}
