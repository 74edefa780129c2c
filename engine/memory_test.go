package engine

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// heapLive is the heap in use after two collections.
func heapLive() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestAccountingCoversHeap checks the accounting's figures against the
// heap: what the index charges for its keys is what they take, give or
// take a little, for small and larger values, with and without expiry.
func TestAccountingCoversHeap(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("measures the heap")
	}
	for _, tc := range []struct {
		name  string
		value int
		ttl   bool
	}{{"100B", 100, false}, {"100B-ttl", 100, true}, {"1KiB", 1000, false}, {"8B", 8, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := openTest(t, testConfig(t.TempDir()))
			n := min(200_000, (40<<20)/(tc.value+16))
			value := make([]byte, tc.value)
			batch := make([]Entry, 0, 1000)
			exp := int64(0)
			if tc.ttl {
				exp = time.Now().Add(time.Hour).UnixNano()
			}
			mustApply(t, e, put("warm", "x", ver(0, 0, 1)))
			if err := e.Snapshot(); err != nil {
				t.Fatal(err)
			}
			before, usedBefore := heapLive(), e.Stats().MemoryUsed
			for i := 0; i < n; i++ {
				batch = append(batch, Entry{Key: fmt.Sprintf("key-%012d", i), Value: value, ExpiresAt: exp, Version: ver(1, 0, 1)})
				if len(batch) == cap(batch) {
					mustApply(t, e, batch...)
					batch = batch[:0]
				}
			}
			if err := e.Snapshot(); err != nil { // empties the dirty lists
				t.Fatal(err)
			}
			grew, charged := heapLive()-before, e.Stats().MemoryUsed-usedBefore
			ratio := float64(grew) / float64(charged)
			t.Logf("heap grew %d bytes a key, the accounting charged %d (ratio %.2f)", grew/int64(n), charged/int64(n), ratio)
			if ratio > 1.05 || ratio < 0.8 {
				t.Errorf("heap grew %d, charged %d: ratio %.2f, want 0.8 to 1.05", grew, charged, ratio)
			}
			debug.FreeOSMemory()
		})
	}
}

func TestDefaultMaxMemory(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    int64
	}{{"max\n", 0}, {"1073741824\n", 768 << 20}, {"16777216\n", 0}, {"garbage", 0}} {
		path := dir + "/memory.max"
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := DefaultMaxMemory(path); got != tc.want {
			t.Errorf("memory.max %q: default bound %d, want %d", tc.content, got, tc.want)
		}
	}
	if got := DefaultMaxMemory(dir + "/missing"); got != 0 {
		t.Errorf("no memory.max: %d", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{EvictAllKeys, EvictNone, EvictVolatile, EvictVolatileTTL} {
		if got, err := ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParsePolicy("lru"); err == nil {
		t.Error("ParsePolicy(lru) succeeded")
	}
	if err := (Config{Dir: "d", MaxMemory: 1 << 20}).Validate(); err == nil {
		t.Error("a bound below MinMaxMemory passed Validate")
	}
}
