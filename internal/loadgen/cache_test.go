package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
