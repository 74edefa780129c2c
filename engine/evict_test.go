package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// boundedConfig is a test config with a memory bound and a policy.
func boundedConfig(dir string, maxMemory int64, p Policy) Config {
	cfg := testConfig(dir)
	cfg.SegmentBytes = 16 << 20 // fewer rollovers, each an fsync
	cfg.MaxMemory = maxMemory
	cfg.Eviction = p
	return cfg
}

// testBound is the bound of the fill tests: large enough that the
// process's fixed parts are small beside it, small enough to fill fast.
func testBound() int64 {
	return MinMaxMemory
}

// fillValue is the size of the values the fill tests write: large
// enough that three times the bound takes few keys.
const fillValue = 1000

// valueOf is the value of key i.
func valueOf(i int) []byte {
	v := make([]byte, fillValue)
	copy(v, fmt.Sprintf("value-%d", i))
	return v
}

func keyOf(i int) string { return fmt.Sprintf("key-%012d", i) }

// rssSampler samples the process's resident memory in the background and
// keeps the largest sample, with its anonymous and file-backed parts.
type rssSampler struct {
	peak, anon, file atomic.Int64
	stop             chan struct{}
	done             chan struct{}
}

func sampleRSS(tb testing.TB) *rssSampler {
	tb.Helper()
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if anon, file := rssParts(); anon+file > s.peak.Load() {
				s.peak.Store(anon + file)
				s.anon.Store(anon)
				s.file.Store(file)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// rssParts reads RssAnon and RssFile from /proc/self/status.
func rssParts() (anon, file int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		switch name {
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	return anon, file
}

// end stops sampling and returns the peak, logging its parts.
func (s *rssSampler) end(tb testing.TB) int64 {
	close(s.stop)
	<-s.done
	tb.Logf("peak resident memory %.1f MiB: anonymous %.1f MiB, file-backed %.1f MiB",
		float64(s.peak.Load())/(1<<20), float64(s.anon.Load())/(1<<20), float64(s.file.Load())/(1<<20))
	return s.peak.Load()
}

// rssOverhead is what the tests allow resident memory above the bound:
// the test binary's code and data, the runtime, and a snapshot's pages.
const rssOverhead = 24 << 20

// withMemoryLimit runs the test with the process's Go memory limit set
// by the engine, and puts the old one back after.
func withMemoryLimit(t *testing.T, cfg *Config) {
	t.Helper()
	if raceEnabled {
		return
	}
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old); debug.FreeOSMemory() })
	debug.FreeOSMemory()
	cfg.SetMemoryLimit = true
}

// fill writes keys [from, to) in batches of 100 and checks after each
// batch that the accounting stays within the budget. It returns how many
// writes failed with ErrMemoryFull.
func fill(t *testing.T, e *Engine, from, to int, ttl func(i int) int64) (full int) {
	t.Helper()
	batch := make([]Entry, 0, 100)
	flush := func() {
		_, err := e.ApplyBatch(batch)
		switch {
		case errors.Is(err, ErrMemoryFull):
			full += len(batch)
		case err != nil:
			t.Fatalf("ApplyBatch: %v", err)
		}
		batch = batch[:0]
		if st := e.Stats(); st.MemoryBudget > 0 && st.MemoryUsed > st.MemoryBudget {
			t.Fatalf("accounted %d bytes, budget %d", st.MemoryUsed, st.MemoryBudget)
		}
	}
	for i := from; i < to; i++ {
		ent := Entry{Key: keyOf(i), Value: valueOf(i), ContentType: "text/plain", Version: ver(int64(i), 0, 1)}
		if ttl != nil {
			ent.ExpiresAt = ttl(i)
		}
		batch = append(batch, ent)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return full
}

// capacity is how many keys of valueOf the budget of bound holds.
func capacity(bound int64) int {
	return int(budgetOf(bound) / (costItem + allocSize(recordSize(16, fillValue, 0))))
}

// fillCount is how many keys of valueOf make three times the bound.
func fillCount(bound int64) int {
	return int(3 * bound / (costItem + allocSize(recordSize(16, fillValue, 0))))
}

// TestFillAllKeys fills three times the bound under allkeys: the
// accounting stays within the budget after every batch, resident memory
// within the bound plus the overhead, and about two thirds of the keys
// are evicted, each a miss that leaves a stub.
func TestFillAllKeys(t *testing.T) {
	bound := testBound()
	cfg := boundedConfig(t.TempDir(), bound, EvictAllKeys)
	withMemoryLimit(t, &cfg)
	e := openTest(t, cfg)
	rss := sampleRSS(t)
	n := fillCount(bound)
	if full := fill(t, e, 0, n, nil); full != 0 {
		t.Fatalf("%d writes refused under allkeys", full)
	}
	peak := rss.end(t)
	st := e.Stats()
	t.Logf("%d keys written, %d held, %d stubs, %d evicted, %d stubs dropped; accounted %d of %d; peak RSS %.1f MiB (bound %d MiB)",
		n, st.Keys, st.Stubs, st.Evictions, st.StubsDropped, st.MemoryUsed, st.MemoryBudget, float64(peak)/(1<<20), bound>>20)
	if c := capacity(bound); st.Keys > c || st.Keys < c/3 {
		t.Errorf("%d keys held, the budget holds %d", st.Keys, c)
	}
	if st.Evictions < int64(n-st.Keys) {
		t.Errorf("%d evictions for %d keys gone", st.Evictions, n-st.Keys)
	}
	if st.StubsDropped == 0 || e.ix.stubMem.Load() > st.MemoryBudget/stubShareDen+costItem+allocSize(recordSize(16, 0, -1)) {
		t.Errorf("stubs take %d bytes of a budget of %d, %d dropped", e.ix.stubMem.Load(), st.MemoryBudget, st.StubsDropped)
	}
	if !raceEnabled && peak > bound+rssOverhead {
		t.Errorf("peak resident memory %d, bound %d plus %d", peak, bound, rssOverhead)
	}
	misses := 0
	for i := 0; i < n; i++ {
		if v, ok := getValue(t, e, keyOf(i)); !ok {
			misses++
		} else if v != string(valueOf(i)) {
			t.Fatalf("key %d holds %q", i, v)
		}
	}
	if misses != n-st.Keys {
		t.Errorf("%d misses, %d keys gone", misses, n-st.Keys)
	}
}

// TestNoEviction fills three times the bound under noeviction: writes of
// values are refused with ErrMemoryFull at the bound, nothing held is
// lost, reads and deletes work, and writes succeed again after deletes.
func TestNoEviction(t *testing.T) {
	bound := testBound()
	cfg := boundedConfig(t.TempDir(), bound, EvictNone)
	withMemoryLimit(t, &cfg)
	e := openTest(t, cfg)
	rss := sampleRSS(t)
	n := fillCount(bound)
	full := fill(t, e, 0, n, nil)
	peak := rss.end(t)
	st := e.Stats()
	t.Logf("%d refused of %d; %d held; accounted %d of %d; peak RSS %.1f MiB", full, n, st.Keys, st.MemoryUsed, st.MemoryBudget, float64(peak)/(1<<20))
	if full == 0 || st.Keys+full != n || st.Evictions != 0 {
		t.Fatalf("%d refused, %d held, %d evicted, of %d", full, st.Keys, st.Evictions, n)
	}
	if st.MemoryUsed < st.MemoryBudget*9/10 {
		t.Errorf("refused at %d of a budget of %d", st.MemoryUsed, st.MemoryBudget)
	}
	if !raceEnabled && peak > bound+rssOverhead {
		t.Errorf("peak resident memory %d, bound %d plus %d", peak, bound, rssOverhead)
	}
	held := st.Keys
	if v, ok := getValue(t, e, keyOf(0)); !ok || v != string(valueOf(0)) {
		t.Fatalf("key 0 = %q, %v at the bound", v, ok)
	}
	refused := false
	for i := n; i < n+1000 && !refused; i++ {
		_, err := e.Apply(Entry{Key: keyOf(i), Value: valueOf(i), Version: ver(int64(i), 0, 1)})
		if err != nil && !errors.Is(err, ErrMemoryFull) {
			t.Fatal(err)
		}
		refused = err != nil
	}
	if !refused {
		t.Fatal("writes go on at the bound")
	}
	held = e.Stats().Keys
	// Deletes work at the bound and give the room back.
	var dels []Entry
	for i := 0; i < held/2; i++ {
		dels = append(dels, del(keyOf(i), ver(int64(n+1), 0, 1)))
	}
	mustApply(t, e, dels...)
	if _, ok := e.Get(keyOf(0)); ok {
		t.Fatal("deleted key still there")
	}
	if full := fill(t, e, n, n+held/10, nil); full != 0 {
		t.Fatalf("%d writes refused after deleting half the keys", full)
	}
}

// TestVolatileKeepsPersistentKeys: under volatile, keys without a TTL are
// never evicted; once only they are left, writes are refused.
func TestVolatileKeepsPersistentKeys(t *testing.T) {
	bound := testBound()
	cfg := boundedConfig(t.TempDir(), bound, EvictVolatile)
	withMemoryLimit(t, &cfg)
	e := openTest(t, cfg)
	rss := sampleRSS(t)
	n := fillCount(bound)
	far := time.Now().Add(time.Hour).UnixNano()
	ttl := func(i int) int64 {
		if i%4 == 0 {
			return 0 // a quarter of the keys have no TTL
		}
		return far
	}
	full := fill(t, e, 0, n, ttl)
	peak := rss.end(t)
	st := e.Stats()
	t.Logf("%d refused of %d; %d held; %d evicted; peak RSS %.1f MiB", full, n, st.Keys, st.Evictions, float64(peak)/(1<<20))
	if st.Evictions == 0 {
		t.Fatal("nothing evicted")
	}
	if !raceEnabled && peak > bound+rssOverhead {
		t.Errorf("peak resident memory %d, bound %d plus %d", peak, bound, rssOverhead)
	}
	persistent := 0
	for i := 0; i < n; i += 4 {
		if _, ok := e.Get(keyOf(i)); ok {
			persistent++
		}
	}
	// Every key without a TTL that went in is still there.
	if persistent+full/4 < n/4-100 || st.Keys < persistent {
		t.Errorf("%d of %d keys without TTL held, %d writes refused", persistent, (n+3)/4, full)
	}
	lost := 0
	for i := 0; i < n; i += 4 {
		if e.ix.stubOf(keyOf(i)) {
			lost++
		}
	}
	if lost != 0 {
		t.Errorf("%d keys without TTL evicted", lost)
	}
	// Only keys without TTL left to fill with: writes are refused at the bound.
	if full := fill(t, e, n, n+n/2, func(int) int64 { return 0 }); full == 0 {
		t.Error("no write refused with only persistent keys to evict")
	}
	for i := 0; i < n; i += 4 {
		if e.ix.stubOf(keyOf(i)) {
			t.Fatalf("key %d without TTL evicted", i)
		}
	}
}

// stubOf reports whether key is held as an eviction stub.
func (ix *index) stubOf(key string) bool {
	h := hashKey(key)
	s := ix.shard(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := s.t.get(key, h)
	return it != nil && it.flags()&itemEvicted != 0
}

// TestVolatileTTLEvictsSoonestFirst: under volatile-ttl the keys whose
// expiry comes first go first.
func TestVolatileTTLEvictsSoonestFirst(t *testing.T) {
	bound := testBound()
	cfg := boundedConfig(t.TempDir(), bound, EvictVolatileTTL)
	withMemoryLimit(t, &cfg)
	e := openTest(t, cfg)
	rss := sampleRSS(t)
	n := capacity(bound) * 9 / 10 // the first part fits, with TTLs in random order
	base := time.Now().Add(time.Hour).UnixNano()
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	ttlOf := func(i int) int64 { return base + int64(perm[i%n])*int64(time.Millisecond) }
	if full := fill(t, e, 0, n, ttlOf); full != 0 {
		t.Fatalf("%d refused", full)
	}
	// Then keys with TTLs after all of those: the first part is evicted
	// soonest first.
	if full := fill(t, e, n, n+n/2, func(i int) int64 { return base + int64(time.Hour) + int64(i) }); full != 0 {
		t.Fatalf("%d refused", full)
	}
	peak := rss.end(t)
	st := e.Stats()
	t.Logf("%d held, %d evicted, peak RSS %.1f MiB", st.Keys, st.Evictions, float64(peak)/(1<<20))
	if st.Evictions < int64(n/3) {
		t.Fatalf("%d evicted", st.Evictions)
	}
	if !raceEnabled && peak > bound+rssOverhead {
		t.Errorf("peak resident memory %d, bound %d plus %d", peak, bound, rssOverhead)
	}
	latestGone, soonestHeld := int64(0), int64(1<<62)
	for i := 0; i < n; i++ {
		if _, ok := e.Get(keyOf(i)); ok {
			soonestHeld = min(soonestHeld, ttlOf(i))
		} else {
			latestGone = max(latestGone, ttlOf(i))
		}
	}
	if latestGone > soonestHeld {
		t.Errorf("a key expiring at +%v was evicted while one expiring at +%v is held",
			time.Duration(latestGone-base), time.Duration(soonestHeld-base))
	}
	for i := n; i < n+n/2; i++ {
		if e.ix.stubOf(keyOf(i)) {
			t.Fatalf("key %d of the later part evicted before the first part", i)
		}
	}
}

// TestEvictedStaysEvicted: evicted keys are misses after a clean restart
// and after a crash (the log's eviction records), their stubs keep the
// digests equal to those of an engine that holds every value, and
// LeafEntries shows them as Evicted with their version.
func TestEvictedStaysEvicted(t *testing.T) {
	dir := t.TempDir()
	bound := int64(MinMaxMemory)
	e := openTest(t, boundedConfig(dir, bound, EvictAllKeys))
	full := openTest(t, testConfig(t.TempDir()))
	n := capacity(bound) * 5 / 4 // enough to evict, not enough to drop stubs
	fill(t, e, 0, n, nil)
	fill(t, full, 0, n, nil)
	st := e.Stats()
	if st.Evictions == 0 || st.StubsDropped != 0 {
		t.Fatalf("%d evicted, %d stubs dropped", st.Evictions, st.StubsDropped)
	}
	gone := missing(t, e, n)
	if len(gone) != int(st.Evictions) {
		t.Fatalf("%d misses, %d evictions", len(gone), st.Evictions)
	}
	if !slices.Equal(e.LeafDigests(), full.LeafDigests()) {
		t.Fatal("leaf digests differ from an engine holding every value")
	}
	k := keyOf(gone[0])
	var stub *Entry
	for _, ent := range e.LeafEntries(LeafOf(k)) {
		if ent.Key == k {
			stub = &ent
		}
	}
	if stub == nil || !stub.Evicted || stub.Value != nil || stub.ContentType != "" || stub.Deleted || stub.Version != ver(int64(gone[0]), 0, 1) {
		t.Fatalf("LeafEntries shows the evicted key as %+v", stub)
	}
	if v, ok := e.Head(k); !ok || v != stub.Version {
		t.Fatalf("Head(%s) = %v, %v", k, v, ok)
	}

	// A crash: the log, with its eviction records, and no new snapshot.
	for e.logPending() {
	}
	e.logPending()
	crashed := crashCopy(t, dir)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]string{"restart": dir, "crash": crashed} {
		r := openTest(t, boundedConfig(d, bound, EvictAllKeys))
		if got := missing(t, r, n); !slices.Equal(got, gone) {
			t.Errorf("%s: %d misses, want the %d evicted keys", name, len(got), len(gone))
		}
		if !slices.Equal(r.LeafDigests(), full.LeafDigests()) {
			t.Errorf("%s: leaf digests differ", name)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// missing lists the keys of [0, n) that are misses.
func missing(t *testing.T, e *Engine, n int) []int {
	t.Helper()
	var out []int
	for i := 0; i < n; i++ {
		if _, ok := e.Get(keyOf(i)); !ok {
			out = append(out, i)
		}
	}
	return out
}

// TestStubVersions: an entry newer than a stub replaces it, an older or
// equal one loses, and stubs passed to Apply are ignored.
func TestStubVersions(t *testing.T) {
	bound := int64(MinMaxMemory)
	e := openTest(t, boundedConfig(t.TempDir(), bound, EvictAllKeys))
	n := capacity(bound) * 3 / 2
	fill(t, e, 0, n, nil)
	var gone []int
	for i := 0; i < n; i++ {
		if e.ix.stubOf(keyOf(i)) {
			gone = append(gone, i)
		}
	}
	if len(gone) < 3 {
		t.Fatalf("%d stubs", len(gone))
	}
	i := gone[0]
	if ok, err := e.Apply(put(keyOf(i), "same", ver(int64(i), 0, 1))); ok || err != nil {
		t.Fatalf("equal version over a stub: %v, %v", ok, err)
	}
	if ok, err := e.Apply(put(keyOf(i), "older", ver(int64(i)-1, 0, 1))); ok || err != nil {
		t.Fatalf("older version over a stub: %v, %v", ok, err)
	}
	if _, ok := e.Get(keyOf(i)); ok {
		t.Fatal("stub became visible")
	}
	if ok, err := e.Apply(put(keyOf(i), "newer", ver(int64(i)+1, 0, 1))); !ok || err != nil {
		t.Fatalf("newer version over a stub: %v, %v", ok, err)
	}
	if v, ok := getValue(t, e, keyOf(i)); !ok || v != "newer" {
		t.Fatalf("after a newer write: %q, %v", v, ok)
	}
	if ok, err := e.Apply(del(keyOf(gone[1]), ver(int64(gone[1])+1, 0, 1))); !ok || err != nil {
		t.Fatalf("delete over a stub: %v, %v", ok, err)
	}
	// A stub sent by mistake is ignored, and the entries beside it go in.
	n, err := e.ApplyBatch([]Entry{{Key: keyOf(gone[2]), Version: ver(int64(n)+5, 0, 1), Evicted: true}, put("beside", "x", ver(1, 0, 1))})
	if err != nil || n != 1 {
		t.Fatalf("a stub beside a value: %d stored, %v", n, err)
	}
	if !e.ix.stubOf(keyOf(gone[2])) {
		t.Fatal("an applied stub replaced the key's stub")
	}
	if _, ok := e.Get("beside"); !ok {
		t.Fatal("the value beside a stub is missing")
	}
}

// TestStubExpires: a stub of a value with a TTL turns into an expiry
// marker at the expiry, like the value would have.
func TestStubExpires(t *testing.T) {
	bound := int64(MinMaxMemory)
	cfg, clock := clockedConfig(t.TempDir())
	cfg.MaxMemory = bound
	e := openTest(t, cfg)
	n := capacity(bound) * 3 / 2
	exp := clock.Now().Add(time.Minute).UnixNano()
	fill(t, e, 0, n, func(int) int64 { return exp })
	if e.Stats().Stubs == 0 {
		t.Fatal("no stubs")
	}
	clock.Advance(time.Minute)
	waitFor(t, 10*time.Second, "stubs to expire", func() bool { return e.Stats().Stubs == 0 })
	if st := e.Stats(); st.Tombstones != n {
		t.Fatalf("%d markers, want %d", st.Tombstones, n)
	}
	for _, ent := range e.LeafEntries(LeafOf(keyOf(0))) {
		if ent.Evicted {
			t.Fatalf("expired stub still Evicted: %+v", ent)
		}
	}
}

// TestSmallerBoundEvictsWhileLoading: a restart with a smaller bound
// evicts while it loads the snapshot, so the index never passes the new
// budget, and the digests do not change.
func TestSmallerBoundEvictsWhileLoading(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	n := fillCount(MinMaxMemory) // three times the smaller bound
	fill(t, e, 0, n, nil)
	want := e.LeafDigests()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, boundedConfig(dir, MinMaxMemory, EvictAllKeys))
	st := r.Stats()
	t.Logf("loaded %d keys: %d held, %d stubs, %d evicted, %d stubs dropped", n, st.Keys, st.Stubs, st.Evictions, st.StubsDropped)
	if st.MemoryUsed > st.MemoryBudget || st.Evictions == 0 || st.Keys >= n/2 {
		t.Fatalf("after loading: %+v", st)
	}
	if st.StubsDropped == 0 && !slices.Equal(r.LeafDigests(), want) {
		t.Error("leaf digests changed")
	}
	// The evictions hold across the next restart.
	gone := missing(t, r, n)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTest(t, boundedConfig(dir, MinMaxMemory, EvictAllKeys))
	if got := missing(t, r, n); !slices.Equal(got, gone) {
		t.Errorf("%d misses after the next restart, want %d", len(got), len(gone))
	}
}

// TestReadsProtectKeys: under allkeys, keys read since the hand last
// passed survive the eviction of keys that were not (SIEVE's visited bit).
func TestReadsProtectKeys(t *testing.T) {
	bound := int64(MinMaxMemory)
	e := openTest(t, boundedConfig(t.TempDir(), bound, EvictAllKeys))
	n := capacity(bound) * 9 / 10 // just under the bound
	fill(t, e, 0, n, nil)
	if e.Stats().Evictions != 0 {
		t.Fatal("evicted before the bound")
	}
	for i := 0; i < n; i += 10 {
		e.Get(keyOf(i))
	}
	fill(t, e, n, n+n/3, nil)
	var lostRead, lostOther int
	for i := 0; i < n; i++ {
		if _, ok := e.Get(keyOf(i)); !ok {
			if i%10 == 0 {
				lostRead++
			} else {
				lostOther++
			}
		}
	}
	read, other := float64(lostRead)/float64(n/10), float64(lostOther)/float64(n-n/10)
	t.Logf("evicted %.1f%% of the keys read, %.1f%% of the others", 100*read, 100*other)
	if other < 0.2 || read > other/10 {
		t.Errorf("evicted %.1f%% of the keys read, %.1f%% of the others", 100*read, 100*other)
	}
}
