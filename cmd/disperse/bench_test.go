package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
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

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"http://127.0.0.1:8000": true, "http://localhost:8000": true, "http://[::1]:8000": true,
		"http://10.0.0.1:8000": false, "http://example.com": false, "https://127.0.0.1:8000": true,
		"https://10.0.0.1:8000": false, "ftp://127.0.0.1:8000": false,
		"127.0.0.1:8000": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
}

func TestBaselineServesTheCacheRoutes(t *testing.T) {
	base, stop, err := startBaseline()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	req, _ := http.NewRequest(http.MethodPut, base+"/cache/a/b", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "text/x-mine")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/cache/a/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello" || resp.Header.Get("Content-Type") != "text/x-mine" {
		t.Errorf("GET: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(base + "/cache/missing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET missing: %d", resp.StatusCode)
	}
}

// TestBenchAgainstBaseline runs the whole bench command briefly in compare
// mode against two baselines (the target being a second in-process
// baseline): gets after pre-population never fail.
func TestBenchAgainstBaseline(t *testing.T) {
	target, stop, err := startBaseline()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, op := range []string{"get", "put", "mixed"} {
		bc := &benchConfig{addr: target, clients: 4, duration: 200 * time.Millisecond,
			valueBytes: 10, keys: 50, op: op, compare: true, timeout: 5 * time.Second}
		if err := bc.validate(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := runBenchCommand(context.Background(), bc, &out); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if !strings.Contains(out.String(), "ratio target/baseline") || !strings.Contains(out.String(), "errors 0\n") {
			t.Errorf("%s: output:\n%s", op, out.String())
		}
		if strings.Contains(out.String(), "first error") || strings.Contains(out.String(), "requests 0 ") {
			t.Errorf("%s: output:\n%s", op, out.String())
		}
	}
}

func TestBenchCountsErrors(t *testing.T) {
	target, stop, err := startBaseline()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// Without pre-population every get is a 404, an error.
	bc := &benchConfig{addr: target, clients: 2, duration: time.Second,
		valueBytes: 10, keys: 10, op: "get", timeout: 5 * time.Second}
	l := &loader{cfg: bc, base: target, client: http.DefaultClient}
	r := l.load(context.Background())
	if r.requests == 0 || r.errors != r.requests || !strings.Contains(r.firstErr, "404") {
		t.Errorf("requests %d errors %d first %q", r.requests, r.errors, r.firstErr)
	}
}
