package loadgen

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tt.q)
		if diff := float64(got-tt.want) / float64(tt.want); diff > 0.001 || diff < -1.0/(1<<histSubBits) {
			t.Errorf("quantile(%v) = %v, want within 3%% below %v", tt.q, got, tt.want)
		}
	}
	var m histogram
	m.merge(&h)
	m.merge(&h)
	if m.n != 2000 || m.quantile(0.5) != h.quantile(0.5) || m.max != h.max {
		t.Errorf("merge: n %d p50 %v max %v", m.n, m.quantile(0.5), m.max)
	}
}

func TestHistogramBucketsAreContiguous(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<20; v++ {
		b := histBucket(v)
		if b != prev && b != prev+1 {
			t.Fatalf("value %d: bucket %d after %d", v, b, prev)
		}
		if histLow(b) > v {
			t.Fatalf("value %d in bucket %d whose low is %d", v, b, histLow(b))
		}
		prev = b
	}
	if b := histBucket(1<<62 + 12345); b >= len(histogram{}.counts) {
		t.Fatalf("bucket %d out of range", b)
	}
}
