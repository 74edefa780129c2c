package loadgen

import (
	"math/bits"
	"time"
)

// histSubBits sets the histogram's precision: each power of two is cut into
// 2^histSubBits buckets, so a quantile is within 1/2^histSubBits (about 3%)
// of the true value.
const histSubBits = 5

// histogram counts latencies in log-linear buckets, as HDR histograms do:
// exact below 2^histSubBits nanoseconds, then 32 buckets per power of two.
// It takes constant memory whatever the number of samples. The zero value is
// empty and ready; it is not safe for concurrent use (one per client, then
// merge).
type histogram struct {
	counts [64 << histSubBits]uint64
	n      uint64
	max    int64
}

func histBucket(v int64) int {
	if v < 1<<histSubBits {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	l := bits.Len64(uint64(v)) // v has l bits, l > histSubBits
	shift := l - histSubBits - 1
	return (shift+1)<<histSubBits + int(uint64(v)>>shift) - 1<<histSubBits
}

// histLow is the smallest value that falls in bucket i.
func histLow(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	k := i >> histSubBits
	m := int64(i&(1<<histSubBits-1)) + 1<<histSubBits
	return m << (k - 1)
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[histBucket(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at q (0..1): the lower bound of the bucket that
// holds the sample of that rank, or the maximum for q = 1.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(q*float64(h.n)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histLow(i), h.max))
		}
	}
	return time.Duration(h.max)
}
