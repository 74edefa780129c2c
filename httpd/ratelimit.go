package httpd

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateKey is who a request is counted against: the token's name when the
// request carries a valid token, else the client's address (an IPv6
// address by its /64, the block one host usually owns).
type rateKey struct {
	name string
	ip   netip.Addr
}

// clientIP is the address of a request's peer as the rate limiter counts
// it. Only the connection's address is used: a header such as
// X-Forwarded-For is the client's to forge.
func clientIP(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// Bounds of the rate limiter's table.
const (
	rateShards = 16
	// DefaultMaxRateClients is how many clients the rate limiter tracks at
	// once. An entry costs about 200 bytes, so the table stays under about
	// 4 MiB however many addresses a flood comes from.
	DefaultMaxRateClients = 16384
	// rateSweepEvery is how often a shard drops its idle entries.
	rateSweepEvery = 10 * time.Second
	// rateFullSweepGap: a full shard sweeps at most this often, so a flood
	// of new addresses cannot make every request scan the shard.
	rateFullSweepGap = 100 * time.Millisecond
)

// rateLimiter is the per-client token bucket of --rate-limit: a table of
// golang.org/x/time/rate limiters, in shards with a lock each. Its memory
// is bounded: an entry whose bucket has refilled is the same as no entry,
// so sweeps drop those; when a shard is full of active clients anyway, the
// clients it cannot take share one overflow bucket until room is made.
type rateLimiter struct {
	limit    rate.Limit
	burst    int
	perShard int
	seed     maphash.Seed
	shards   [rateShards]rateShard
	overflow *rate.Limiter
}

type rateShard struct {
	mu        sync.Mutex
	m         map[rateKey]*rate.Limiter
	nextSweep time.Time
	lastSweep time.Time
	_         [64]byte // keep the shards' locks on separate cache lines
}

// newRateLimiter makes a limiter of perSecond requests per second and
// burst per client, tracking at most maxClients clients.
func newRateLimiter(perSecond float64, burst, maxClients int) *rateLimiter {
	l := &rateLimiter{
		limit:    rate.Limit(perSecond),
		burst:    burst,
		perShard: max(1, maxClients/rateShards),
		seed:     maphash.MakeSeed(),
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[rateKey]*rate.Limiter)
	}
	return l
}

// allow takes one request of key at now from its bucket. When the bucket is
// empty it reports false and the whole seconds until a request would be let
// through, for Retry-After.
func (l *rateLimiter) allow(key rateKey, now time.Time) (bool, int) {
	lim := l.limiterOf(key, now)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, retryAfterSeconds(time.Duration(missing / float64(l.limit) * float64(time.Second)))
}

// limiterOf finds or makes the bucket of key.
func (l *rateLimiter) limiterOf(key rateKey, now time.Time) *rate.Limiter {
	sh := &l.shards[maphash.Comparable(l.seed, key)%rateShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if lim, ok := sh.m[key]; ok {
		return lim
	}
	if now.After(sh.nextSweep) || (len(sh.m) >= l.perShard && now.Sub(sh.lastSweep) >= rateFullSweepGap) {
		l.sweep(sh, now)
	}
	if len(sh.m) >= l.perShard {
		return l.overflow
	}
	lim := rate.NewLimiter(l.limit, l.burst)
	sh.m[key] = lim
	return lim
}

// sweep drops the entries of sh whose buckets are full again: such a
// client has been idle long enough that a new bucket is exactly what it
// would find. sh.mu is held.
func (l *rateLimiter) sweep(sh *rateShard, now time.Time) {
	full := float64(l.burst)
	for k, lim := range sh.m {
		if lim.TokensAt(now) >= full {
			delete(sh.m, k)
		}
	}
	sh.lastSweep, sh.nextSweep = now, now.Add(rateSweepEvery)
}

// clients is how many clients the table tracks.
func (l *rateLimiter) clients() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// defaultBurst is the burst of a rate limit when none is given: one
// second's worth of requests, at least 1.
func defaultBurst(perSecond float64) int {
	return max(1, int(math.Min(math.Ceil(perSecond), math.MaxInt32)))
}
