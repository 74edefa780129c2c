package engine

import (
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
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
	e := openTest(t, cfg)
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
	s := []rtmetrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	rtmetrics.Read(s)
	live, heap := s[0].Value.Uint64(), s[1].Value.Uint64()+s[2].Value.Uint64()
	t.Logf("after recovery: heap %d MiB, live %d MiB, index charged %d MiB", heap>>20, live>>20, e.ix.used()>>20)
	if e.ix.used() < trimIndexAbove {
		t.Fatalf("the index is charged %d bytes: too small for the test", e.ix.used())
	}
	if notLive := heap - min(heap, live); notLive > 16<<20 {
		t.Errorf("the heap holds %d MiB beyond the live %d MiB once recovered", notLive>>20, live>>20)
	}
}
