package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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

// TestBenchMainExitStatus: Main prints the usage on -h, turns a bad command
// line into 2 and a failed run into 1, each with one line on stderr.
func TestBenchMainExitStatus(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer failing.Close()
	var usage bytes.Buffer
	Usage(&usage)
	for _, tt := range []struct {
		args           []string
		code           int
		stdout, stderr string // prefixes
	}{
		{args: []string{"--help"}, code: exitOK, stderr: usage.String()},
		{args: []string{"--bogus"}, code: exitUsage, stderr: "flag provided but not defined: -bogus\n" + usage.String()},
		{args: []string{"--clients", "0"}, code: exitUsage, stderr: "disperse bench: --clients must be at least 1\n"},
		{args: []string{"--addr", "http://10.0.0.1:8000"}, code: exitUsage,
			stderr: `disperse bench: --addr "http://10.0.0.1:8000" is not a loopback address; bench loads only this machine` + "\n"},
		{args: []string{"--baseline", "--clients", "2", "--duration", "100ms", "--keys", "10"}, code: exitOK,
			stdout: "op=get clients=2 duration=100ms value=100B keys=10\nbaseline (gin + map) "},
		{args: []string{"--addr", failing.URL, "--clients", "1", "--keys", "1", "--op", "mixed"}, code: exitFailure,
			stdout: "op=mixed", stderr: "disperse bench: pre-populating key 0: PUT /cache/bench-00000000: 500 Internal Server Error\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.code || !strings.HasPrefix(stdout.String(), tt.stdout) || stderr.String() != tt.stderr {
			t.Errorf("%q: exit %d, want %d; stdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, &stdout, &stderr)
		}
	}
	if !strings.HasPrefix(usage.String(), "usage: disperse bench [flags]\n") || !strings.Contains(usage.String(), "-serve-baseline") {
		t.Errorf("usage:\n%s", &usage)
	}
}

// TestServeBaselineStopsWithContext: --serve-baseline serves until the
// context is done, then exits 0.
func TestServeBaselineStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"--serve-baseline", "127.0.0.1:0"}, &stdout, &stderr)
	if code != exitOK || !strings.HasPrefix(stdout.String(), "baseline (gin + map) serving on http://127.0.0.1:") || stderr.Len() != 0 {
		t.Errorf("exit %d; stdout %q; stderr %q", code, &stdout, &stderr)
	}
}
