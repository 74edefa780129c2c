package engine

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// reapNow runs one reaper pass at the engine's clock, so that a test can
// tell "not due yet" from "not reaped yet".
func reapNow(e *Engine) {
	now := e.now()
	for _, it := range e.ix.deadlines.popDue(now, 1<<30, nil) {
		e.ix.expireDue(it, now)
	}
}

// TestExpiryMarkerKeepsItsVersion: "PUT k old, PUT k new ttl=2s": after the
// expiry, k holds a marker of the new version, whatever way it came to be,
// and the old value never comes back.
func TestExpiryMarkerKeepsItsVersion(t *testing.T) {
	const key = "k"
	states := []struct {
		name string
		// mark returns an engine that was given old and then exp (which
		// expires 2s after the clock's start) and whose clock is past exp.
		mark func(t *testing.T, cfg Config, clock *fakeClock, old, exp Entry) *Engine
	}{
		{"reaped", func(t *testing.T, cfg Config, clock *fakeClock, old, exp Entry) *Engine {
			e := openTest(t, cfg)
			mustApply(t, e, old, exp)
			clock.Advance(3 * time.Second)
			waitFor(t, 10*time.Second, "the reaper", func() bool { return e.Stats().Tombstones == 1 })
			return e
		}},
		{"arrived expired", func(t *testing.T, cfg Config, clock *fakeClock, old, exp Entry) *Engine {
			e := openTest(t, cfg)
			clock.Advance(3 * time.Second)
			mustApply(t, e, old, exp)
			return e
		}},
		{"restart after reaping", func(t *testing.T, cfg Config, clock *fakeClock, old, exp Entry) *Engine {
			e := openTest(t, cfg)
			mustApply(t, e, old, exp)
			clock.Advance(3 * time.Second)
			reapNow(e)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			return openTest(t, cfg)
		}},
		{"expired while closed", func(t *testing.T, cfg Config, clock *fakeClock, old, exp Entry) *Engine {
			e := openTest(t, cfg)
			mustApply(t, e, old, exp)
			if err := e.Close(); err != nil { // the snapshot holds the value
				t.Fatal(err)
			}
			clock.Advance(3 * time.Second)
			return openTest(t, cfg)
		}},
		{"log replay", func(t *testing.T, cfg Config, clock *fakeClock, old, exp Entry) *Engine {
			e := openTest(t, cfg)
			mustApply(t, e, old)
			mustApply(t, e, exp)
			cfg.Dir = crashCopy(t, cfg.Dir) // no snapshot: the log holds both
			clock.Advance(3 * time.Second)
			return openTest(t, cfg)
		}},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			cfg, clock := ttlConfig(t)
			old := put(key, "old", ver(1, 0, 1))
			exp := put(key, "new", ver(2, 0, 1))
			exp.ExpiresAt = clock.Now().Add(2 * time.Second).UnixNano()
			// ref holds the new value, not yet expired.
			refCfg, _ := ttlConfig(t)
			ref := openTest(t, refCfg)
			mustApply(t, ref, old, exp)

			e := st.mark(t, cfg, clock, old, exp)
			checkMarker(t, e, exp)
			if !slices.Equal(e.Digests(), ref.Digests()) || !slices.Equal(e.LeafDigests(), ref.LeafDigests()) {
				t.Fatal("the marker's digest differs from that of the value it replaced")
			}
			checkDigestTree(t, e)

			local := put(key, "local", ver(2, 0, 0))
			local.Local = true
			later := []struct {
				name string
				ent  Entry
				won  bool
			}{
				{"the old value again", old, false},
				{"the same version", exp, false},
				{"an older tombstone", del(key, ver(1, 5, 1)), false},
				{"an older local write", local, false},
				{"a newer value", put(key, "newest", ver(3, 0, 1)), true},
			}
			for _, l := range later {
				won, err := e.Apply(l.ent)
				if err != nil {
					t.Fatal(err)
				}
				if won != l.won {
					t.Fatalf("%s: won = %v, want %v", l.name, won, l.won)
				}
				if !l.won {
					checkMarker(t, e, exp)
				}
			}
			if got, ok := getValue(t, e, key); !ok || got != "newest" {
				t.Fatalf("Get = %q, %v after a newer write", got, ok)
			}
			if s := e.Stats(); s.Keys != 1 || s.Tombstones != 0 {
				t.Fatalf("stats %+v after a newer write", s)
			}
		})
	}
}

// checkMarker fails unless e holds exp's key as an expiry marker of exp.
func checkMarker(tb testing.TB, e *Engine, exp Entry) {
	tb.Helper()
	if got, ok := e.Get(exp.Key); ok {
		tb.Fatalf("Get shows %+v past its expiry", got)
	}
	if keys, _ := e.List("", "", 10); len(keys) != 0 {
		tb.Fatalf("List shows %q", keys)
	}
	if v, ok := e.Head(exp.Key); !ok || v != exp.Version {
		tb.Fatalf("Head = %v, %v; want the marker's version %v", v, ok, exp.Version)
	}
	if s := e.Stats(); s.Keys != 0 || s.Tombstones != 1 || s.ValueBytes != 0 || s.KeyBytes != int64(len(exp.Key)) {
		tb.Fatalf("stats %+v, want one marker with its key and no value bytes", s)
	}
	want := Entry{Key: exp.Key, ExpiresAt: exp.ExpiresAt, Version: exp.Version}
	for name, ents := range map[string][]Entry{
		"BucketEntries": e.BucketEntries(BucketOf(exp.Key)),
		"LeafEntries":   e.LeafEntries(LeafOf(exp.Key)),
	} {
		if len(ents) != 1 || !sameEntries(ents, []Entry{want}) || ents[0].Value != nil {
			tb.Fatalf("%s = %+v, want the marker %+v", name, ents, want)
		}
	}
}

// TestExpiryMarkerFreesTheValue: the reaper drops the value's bytes and its
// content type, in the index and in the next snapshot.
func TestExpiryMarkerFreesTheValue(t *testing.T) {
	cfg, clock := ttlConfig(t)
	e := openTest(t, cfg)
	const n, size = 256, 64 << 10
	exp := clock.Now().Add(time.Second).UnixNano()
	for i := range n {
		value := make([]byte, size)
		value[0] = byte(i)
		mustApply(t, e, Entry{Key: string(rune('a'+i%26)) + string(rune('0'+i/26)), Value: value,
			ContentType: "application/x-rare", ExpiresAt: exp, Version: ver(int64(i), 0, 1)})
	}
	heapBefore := liveHeap()
	clock.Advance(2 * time.Second)
	waitFor(t, 10*time.Second, "the reaper", func() bool { return e.Stats().Tombstones == n })
	if s := e.Stats(); s.ValueBytes != 0 {
		t.Fatalf("ValueBytes = %d after every value expired", s.ValueBytes)
	}
	heapAfter := liveHeap()
	if freed := int64(heapBefore) - int64(heapAfter); freed < n*size*9/10 {
		t.Fatalf("heap went from %d to %d bytes: the markers keep the values (%d bytes)", heapBefore, heapAfter, n*size)
	}
	for i := range e.ix.shards {
		s := &e.ix.shards[i]
		s.mu.RLock()
		s.t.each(func(it *item) {
			if it.vlen() != 0 || it.ctype() != 0 || it.flags()&itemCtypeX != 0 || it.flags()&itemMarker == 0 {
				t.Errorf("marker %q: vlen %d ctype %d flags %b", it.key(), it.vlen(), it.ctype(), it.flags())
			}
		})
		s.mu.RUnlock()
	}
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	var ents []Entry
	for _, k := range []string{"a0", "b0"} {
		v, _, ok := e.ix.encodeItem(k, &arena{}, nil)
		if !ok {
			t.Fatalf("%s not in the index", k)
		}
		var err error
		if ents, err = DecodeEntries(v); err != nil || len(ents) != 1 || ents[0].Value != nil || ents[0].ContentType != "" {
			t.Fatalf("%s is written to the snapshot as %+v (%v)", k, ents, err)
		}
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestCollectionDeadlines: a tombstone goes TombstoneTTL after its version's
// wall time, an expiry marker TombstoneTTL after its ExpiresAt, a local
// value at its ExpiresAt; the reaper, a snapshot load and a log replay all
// keep a slot until that deadline and drop it at it.
func TestCollectionDeadlines(t *testing.T) {
	const ttl = time.Hour
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	wall := Version{Time: uint64(start.UnixMilli()) << 16, Node: 1}
	expiring := put("k", "v", wall)
	expiring.ExpiresAt = start.Add(time.Second).UnixNano()
	localExpiring := expiring
	localExpiring.Local = true
	rows := []struct {
		name     string
		ent      Entry
		deadline time.Time
	}{
		{"tombstone", del("k", wall), start.Add(ttl)},
		{"expiry marker", expiring, start.Add(time.Second + ttl)},
		{"local value", localExpiring, start.Add(time.Second)},
	}
	paths := []struct {
		name string
		// at returns an engine holding what e held, seen at clock time at.
		at func(t *testing.T, e *Engine, cfg Config, clock *fakeClock, at time.Time) *Engine
	}{
		{"reaper", func(t *testing.T, e *Engine, cfg Config, clock *fakeClock, at time.Time) *Engine {
			clock.ns.Store(at.UnixNano())
			reapNow(e)
			return e
		}},
		{"snapshot load", func(t *testing.T, e *Engine, cfg Config, clock *fakeClock, at time.Time) *Engine {
			if err := e.Snapshot(); err != nil {
				t.Fatal(err)
			}
			cfg.Dir = crashCopy(t, cfg.Dir)
			clock.ns.Store(at.UnixNano())
			return openTest(t, cfg)
		}},
		{"log replay", func(t *testing.T, e *Engine, cfg Config, clock *fakeClock, at time.Time) *Engine {
			cfg.Dir = crashCopy(t, cfg.Dir)
			clock.ns.Store(at.UnixNano())
			return openTest(t, cfg)
		}},
	}
	for _, row := range rows {
		for _, path := range paths {
			t.Run(row.name+"/"+path.name, func(t *testing.T) {
				cfg, clock := ttlConfig(t)
				e := openTest(t, cfg)
				mustApply(t, e, row.ent)
				before := path.at(t, e, cfg, clock, row.deadline.Add(-time.Millisecond))
				if v, ok := before.Head("k"); !ok || v != row.ent.Version {
					t.Fatalf("just before the deadline: Head = %v, %v; want it kept", v, ok)
				}
				after := path.at(t, e, cfg, clock, row.deadline)
				if v, ok := after.Head("k"); ok {
					t.Fatalf("at the deadline: Head = %v, want it collected", v)
				}
				if s := after.Stats(); s.Keys != 0 || s.Tombstones != 0 || s.KeyBytes != 0 {
					t.Fatalf("at the deadline: stats %+v", s)
				}
				if path.name != "reaper" && after.Recovery().ExpiredSkipped != 1 {
					t.Fatalf("recovery %+v, want one slot skipped", after.Recovery())
				}
				for i, d := range after.LeafDigests() {
					if d != 0 {
						t.Fatalf("leaf %d digest %x after the collection", i, d)
					}
				}
				checkDigestTree(t, after)
			})
		}
	}
}
