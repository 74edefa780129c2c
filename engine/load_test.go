package engine

import (
	"fmt"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// TestLoadAcrossBatches reopens a snapshot of several load batches in which
// some keys have expired by the time of the reopen (they load as expiry
// markers), some are tombstones and some carry a local slot, and checks the
// index against one built by applying the same entries at the same time.
func TestLoadAcrossBatches(t *testing.T) {
	cfg, clock := clockedConfig(t.TempDir())
	e := openTest(t, cfg)

	const n = 3*loadBatch + 7
	soon := clock.Now().Add(5 * time.Second).UnixNano()
	later := clock.Now().Add(time.Hour).UnixNano()
	var all []Entry
	var live []string
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k%06d", i)
		ent := put(k, fmt.Sprint("v", i), ver(int64(i), 0, 1))
		switch i % 5 {
		case 0: // expires before the reopen
			ent.ExpiresAt = soon
		case 1:
			ent.ExpiresAt = later
		case 2:
			ent = del(k, ent.Version)
		}
		all = append(all, ent)
		if i%5 == 1 || i%5 > 2 {
			live = append(live, k)
		}
		if i%7 == 3 { // a local slot beside the replicated one
			local := put(k, "local", ver(int64(n+i), 0, 1))
			local.Local = true
			all = append(all, local)
			if i%5 == 0 || i%5 == 2 {
				live = append(live, k) // only the local slot is visible
			}
		}
	}
	mustApply(t, e, all...)
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)

	r := openTest(t, cfg)
	wantCfg, wantClock := clockedConfig(t.TempDir())
	wantClock.ns.Store(clock.ns.Load())
	want := openTest(t, wantCfg)
	mustApply(t, want, all...)

	if got, exp := r.Stats(), want.Stats(); got.Keys != exp.Keys || got.Tombstones != exp.Tombstones ||
		got.KeyBytes != exp.KeyBytes || got.ValueBytes != exp.ValueBytes {
		t.Fatalf("stats after load %+v, want %+v", got, exp)
	}
	if !equalDigests(r.Digests(), want.Digests()) || !equalDigests(r.LeafDigests(), want.LeafDigests()) {
		t.Fatal("digests after load differ from those of the same entries applied")
	}
	checkDigestTree(t, r)
	if v, ok := r.Head("k000000"); !ok || v != all[0].Version {
		t.Fatalf("Head(k000000) = %v, %v: the expired value must load as a marker", v, ok)
	}
	st := r.Stats()
	if l := r.ix.tree.len(); l != st.Keys+st.Tombstones {
		t.Fatalf("ordered index holds %d items, want %d (keys and tombstones)", l, st.Keys+st.Tombstones)
	}
	var listed []string
	for after := ""; ; {
		keys, next := r.List("", after, 500)
		listed = append(listed, keys...)
		if next == "" {
			break
		}
		after = next
	}
	if fmt.Sprint(listed) != fmt.Sprint(sortedCopy(live)) {
		t.Fatalf("listed %d keys, want %d: %v", len(listed), len(live), listed)
	}
	for _, k := range []string{"k000000", "k000005"} { // expired, no local slot
		if _, ok := r.Get(k); ok {
			t.Fatalf("%s is visible after its expiry", k)
		}
	}
	if got, ok := getValue(t, r, "k000010"); !ok || got != "local" {
		t.Fatalf("k000010 = %q (ok=%v), want its local slot", got, ok)
	}
}

func sortedCopy(keys []string) []string {
	out := append([]string(nil), keys...)
	slices.Sort(out)
	return out
}

// TestOpenRestoresGCPercent: recovery raises GOGC only while it runs.
func TestOpenRestoresGCPercent(t *testing.T) {
	for _, setting := range []int{100, 50, 800, -1} {
		old := debug.SetGCPercent(setting)
		e := openTest(t, testConfig(t.TempDir()))
		got := debug.SetGCPercent(old)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if got != setting {
			t.Fatalf("GOGC %d after Open, want %d as before it", got, setting)
		}
	}
}
