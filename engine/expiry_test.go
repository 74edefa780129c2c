package engine

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestExpiryMarksWithoutReads: the reaper turns an expired value into an
// expiry marker without any read touching it, and a snapshot, a crash and
// a restart keep the marker (without the value's bytes).
func TestExpiryMarksWithoutReads(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	keep := put("keep", "forever", ver(1, 0, 1))
	long := put("long", "an hour", ver(1, 0, 1))
	long.ExpiresAt = time.Now().Add(time.Hour).UnixNano()
	short := put("short", "a second", ver(1, 0, 1))
	short.ExpiresAt = time.Now().Add(time.Second).UnixNano()
	mustApply(t, e, keep, long, short)
	if err := e.Snapshot(); err != nil { // the snapshot holds "short" with its value
		t.Fatal(err)
	}
	if st := e.Stats(); st.Keys != 3 {
		t.Fatalf("Keys = %d, want 3", st.Keys)
	}
	liveValues := int64(len("forever") + len("an hour"))
	waitFor(t, 10*time.Second, "the 1s key to expire", func() bool {
		st := e.Stats()
		return st.Keys == 2 && st.Tombstones == 1 && st.ValueBytes == liveValues
	})
	if st := e.Stats(); st.KeyBytes != int64(len("keep")+len("long")+len("short")) {
		t.Fatalf("KeyBytes = %d: the marker must keep its key", st.KeyBytes)
	}
	found := false
	for _, be := range e.BucketEntries(BucketOf("short")) {
		if be.Key == "short" {
			found = true
			if be.Value != nil || be.Deleted || be.ExpiresAt != short.ExpiresAt || be.Version != short.Version {
				t.Fatalf("BucketEntries shows the marker as %+v", be)
			}
		}
	}
	if !found {
		t.Fatal("the expiry marker is missing from BucketEntries")
	}

	check := func(stage string, r *Engine) {
		t.Helper()
		if _, ok := r.Get("short"); ok {
			t.Fatalf("%s: expired key is back", stage)
		}
		if v, ok := r.Head("short"); !ok || v != short.Version {
			t.Fatalf("%s: Head(short) = %v, %v; want the marker's version", stage, v, ok)
		}
		if st := r.Stats(); st.Keys != 2 || st.Tombstones != 1 || st.ValueBytes != liveValues {
			t.Fatalf("%s: stats %+v, want 2 keys, 1 marker and only live values", stage, st)
		}
		got, ok := r.Get("long")
		if !ok || got.ExpiresAt != long.ExpiresAt {
			t.Fatalf("%s: long-lived key %+v, want ExpiresAt %d", stage, got, long.ExpiresAt)
		}
		if !equalDigests(r.Digests(), e.Digests()) {
			t.Fatalf("%s: digests differ from the original's", stage)
		}
	}
	// A crash now: the snapshot and the log both hold "short" with its
	// value; it loads as a marker.
	crashed := openTest(t, testConfig(crashCopy(t, dir)))
	check("after crash", crashed)
	if rec := crashed.Recovery(); rec.ExpiredSkipped != 0 {
		t.Fatalf("recovery %+v dropped an entry; the marker must be kept", rec)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, testConfig(dir))
	check("after restart", r)
	// The last snapshot holds the marker.
	if rec := r.Recovery(); rec.SnapshotEntries != 3 || rec.ExpiredSkipped != 0 {
		t.Fatalf("recovery %+v, want 3 entries and nothing dropped", rec)
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// clockedConfig is testConfig(dir) on a fake clock that starts in 2030.
func clockedConfig(dir string) (Config, *fakeClock) {
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	cfg := testConfig(dir)
	cfg.Now = clock.Now
	return cfg, clock
}

// ttlConfig is clockedConfig in a fresh directory with tombstones and
// expiry markers kept an hour.
func ttlConfig(tb testing.TB) (Config, *fakeClock) {
	cfg, clock := clockedConfig(tb.TempDir())
	cfg.TombstoneTTL = time.Hour
	return cfg, clock
}

func TestExpiryFollowsConfiguredClock(t *testing.T) {
	cfg, clock := clockedConfig(t.TempDir())
	e := openTest(t, cfg)
	ent := put("k", "v", ver(1, 0, 1))
	ent.ExpiresAt = clock.Now().Add(10 * time.Second).UnixNano()
	mustApply(t, e, ent)
	if _, ok := e.Get("k"); !ok {
		t.Fatal("key not visible before its expiry")
	}
	clock.Advance(10 * time.Second)
	if _, ok := e.Get("k"); ok {
		t.Fatal("key visible at its expiry time")
	}
	if keys, _ := e.List("", "", 10); len(keys) != 0 {
		t.Fatalf("List shows expired keys %q", keys)
	}
	waitFor(t, 10*time.Second, "the reaper", func() bool {
		st := e.Stats()
		return st.Keys == 0 && st.Tombstones == 1 && st.ValueBytes == 0
	})
}

func TestExpiredLocalFallsBackToReplicated(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	mustApply(t, e, put("k", "cluster", ver(1, 0, 1)))
	local := put("k", "local", ver(2, 0, 1))
	local.Local = true
	local.ExpiresAt = time.Now().Add(500 * time.Millisecond).UnixNano()
	mustApply(t, e, local)
	if got, _ := getValue(t, e, "k"); got != "local" {
		t.Fatalf("Get = %q, want local", got)
	}
	waitFor(t, 10*time.Second, "the local slot to expire", func() bool {
		return e.Stats().ValueBytes == int64(len("cluster"))
	})
	if got, _ := getValue(t, e, "k"); got != "cluster" {
		t.Fatalf("Get = %q, want cluster after the local override expired", got)
	}
	if st := e.Stats(); st.Keys != 1 {
		t.Fatalf("Keys = %d", st.Keys)
	}
}

func TestTombstonesAreCollected(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TombstoneTTL = 300 * time.Millisecond
	e := openTest(t, cfg)
	mustApply(t, e, put("gone", "v", nowVer(0, 1)), put("kept", "v", nowVer(0, 1)))
	mustApply(t, e, del("gone", nowVer(1, 1)))
	if st := e.Stats(); st.Tombstones != 1 || st.Keys != 1 {
		t.Fatalf("stats %+v, want 1 key and 1 tombstone", st)
	}
	b := BucketOf("gone")
	if e.Digests()[b] == 0 {
		t.Fatal("tombstone not in the digest")
	}
	waitFor(t, 10*time.Second, "tombstone collection", func() bool {
		st := e.Stats()
		return st.Tombstones == 0 && st.KeyBytes == int64(len("kept"))
	})
	if b != BucketOf("kept") && e.Digests()[b] != 0 {
		t.Fatal("collected tombstone still in the digest")
	}
	if e.Stats().Keys != 1 {
		t.Fatal("collection removed a live key")
	}
}

func TestDeadlineHeapOrder(t *testing.T) {
	h := newDeadlineHeap()
	items := make([]*item, 100)
	at := map[*item]int64{}
	for i := range items {
		items[i] = &item{hidx: -1}
		at[items[i]] = int64(1000 + i*37%100)
		h.set(items[i], at[items[i]])
	}
	h.set(items[10], 0) // leaves
	h.set(items[20], 1) // moves to the front
	at[items[20]] = 1
	h.set(items[30], 5000) // moves to the back
	at[items[30]] = 5000
	if got := h.popDue(0, 1000, nil); len(got) != 0 {
		t.Fatalf("popped %d items not yet due", len(got))
	}
	got := h.popDue(1<<62, 1000, nil)
	for i := 1; i < len(got); i++ {
		if at[got[i]] < at[got[i-1]] {
			t.Fatalf("popped out of order at %d", i)
		}
	}
	if len(got) != 99 || got[0] != items[20] {
		t.Fatalf("popped %d items, first %p, want 99 starting with items[20]", len(got), got[0])
	}
	for _, it := range got {
		if it == items[10] || it.hidx != -1 {
			t.Fatal("removed item popped or index not reset")
		}
	}
	if h.len() != 0 {
		t.Fatal("heap not empty")
	}
}
