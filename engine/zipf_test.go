package engine

import (
	"container/list"
	"flag"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/disperse/disperse/wal"
)

var (
	zipfRequests = flag.Int("zipf.requests", 10_000_000, "requests of BenchmarkZipfHitRatio")
	zipfKeys     = flag.Int("zipf.keys", 1_000_000, "keys of BenchmarkZipfHitRatio")
)

// zipf draws ranks in [0, n) with P(i) proportional to 1/(i+1)^theta, by
// the method of Gray et al. ("Quickly generating billion-record synthetic
// databases", SIGMOD '94) that YCSB uses; it works for theta < 1, where
// math/rand's Zipf does not.
type zipf struct {
	n                        float64
	theta, alpha, zetan, eta float64
	half                     float64
	rng                      *rand.Rand
}

func newZipf(n int, theta float64, seed uint64) *zipf {
	z := &zipf{n: float64(n), theta: theta, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := 1; i <= n; i++ {
		z.zetan += 1 / math.Pow(float64(i), theta)
	}
	zeta2 := 1 + 1/math.Pow(2, theta)
	z.alpha = 1 / (1 - theta)
	z.eta = (1 - math.Pow(2/z.n, 1-theta)) / (1 - zeta2/z.zetan)
	z.half = 1 + math.Pow(0.5, theta)
	return z
}

func (z *zipf) next() int {
	u := z.rng.Float64()
	uz := u * z.zetan
	switch {
	case uz < 1:
		return 0
	case uz < z.half:
		return 1
	}
	return min(int(z.n*math.Pow(z.eta*u-z.eta+1, z.alpha)), int(z.n)-1)
}

// lru is an exact LRU cache of keys, for comparison.
type lru struct {
	cap   int
	order *list.List // most recent first
	items map[int]*list.Element
}

func newLRU(capacity int) *lru {
	return &lru{cap: capacity, order: list.New(), items: make(map[int]*list.Element, capacity)}
}

// access reports a hit, or inserts k (evicting the least recent).
func (c *lru) access(k int) bool {
	if el, ok := c.items[k]; ok {
		c.order.MoveToFront(el)
		return true
	}
	if c.order.Len() >= c.cap {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(int))
	}
	c.items[k] = c.order.PushFront(k)
	return false
}

// zipfRun plays requests Zipf (s = 0.99) reads over keys through an
// engine bounded to hold about a tenth of them (a miss writes the key, as
// a cache fill does), then through an exact LRU holding as many keys as
// the engine held on average, and returns both hit ratios and the engine's
// average keys held.
func zipfRun(tb testing.TB, requests, keys int) (sieve, lru float64, held int) {
	tb.Helper()
	value := make([]byte, 100)
	perKey := costItem + allocSize(recordSize(len("z-")+7, len(value), 0)) + costDirty/4
	// A budget for a tenth of the keys, plus the stubs' share.
	budget := int64(keys/10) * perKey * stubShareDen / (stubShareDen - 1)
	maxMemory := max((budget+reserveFixed)*reserveShareDen/(reserveShareDen-1), MinMaxMemory)
	cfg := testConfig(tb.TempDir())
	cfg.Sync = wal.SyncNever
	cfg.SegmentBytes = 64 << 20
	cfg.MaxMemory = maxMemory
	e := openTest(tb, cfg)
	names := make([]string, keys)
	for i := range names {
		names[i] = "z-" + strconv.Itoa(i)
	}
	z := newZipf(keys, 0.99, 1)
	trace := make([]int32, requests)
	for i := range trace {
		trace[i] = int32(z.next())
	}
	hits, heldSum, samples := 0, 0, 0
	for i, k := range trace {
		if _, ok := e.Get(names[k]); ok {
			hits++
		} else if _, err := e.Apply(Entry{Key: names[k], Value: value, Version: Version{Time: uint64(i + 1), Node: 1}}); err != nil {
			tb.Fatal(err)
		}
		if i%1000 == 0 && i >= requests/10 {
			heldSum += e.Stats().Keys
			samples++
		}
	}
	held = heldSum / max(samples, 1)
	c := newLRU(held)
	lhits := 0
	for _, k := range trace {
		if c.access(int(k)) {
			lhits++
		}
	}
	return float64(hits) / float64(requests), float64(lhits) / float64(requests), held
}

// BenchmarkZipfHitRatio: the engine's SIEVE against exact LRU on a Zipf
// (s = 0.99) trace, 10,000,000 requests over 1,000,000 keys by default,
// the bound at about a tenth of the keys. Run with -benchtime=1x.
func BenchmarkZipfHitRatio(b *testing.B) {
	for i := 0; i < b.N; i++ {
		start := time.Now()
		sieve, lru, held := zipfRun(b, *zipfRequests, *zipfKeys)
		b.ReportMetric(100*sieve, "sieve-hit%")
		b.ReportMetric(100*lru, "lru-hit%")
		b.ReportMetric(float64(held), "keys-held")
		b.ReportMetric(time.Since(start).Seconds(), "s")
	}
}

// TestZipfSieveBeatsLRU is the benchmark's claim on a smaller trace: the
// engine's hit ratio is at least exact LRU's with as many keys.
func TestZipfSieveBeatsLRU(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("plays a million requests")
	}
	sieve, lru, held := zipfRun(t, 1_000_000, 100_000)
	t.Logf("hit ratio: engine (SIEVE) %.2f%%, exact LRU %.2f%%, %d keys held", 100*sieve, 100*lru, held)
	if sieve < lru {
		t.Errorf("engine hit ratio %.4f below exact LRU's %.4f", sieve, lru)
	}
}
