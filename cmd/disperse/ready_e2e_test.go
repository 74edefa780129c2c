package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2EReadyTimeoutOnSilentListener: `disperse ready --timeout 1s`
// against a listener that accepts and never answers gives up at its
// timeout, exit status 1, instead of hanging.
func TestE2EReadyTimeoutOnSilentListener(t *testing.T) {
	needBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	cmd := exec.Command(binPath, "ready", "--addr", "http://"+ln.Addr().String(), "--timeout", "1s")
	done := make(chan error, 1)
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("ready against a silent listener: %v, exit status %d, want 1", err, cmd.ProcessState.ExitCode())
		}
		t.Logf("gave up after %v", time.Since(started).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("ready --timeout 1s still waiting after 30s on a listener that never answers")
	}
}

// TestE2EBuildInfo: /metrics names the binary's version and Go release.
func TestE2EBuildInfo(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir())
	p.waitReady(t)
	code, body, err := httpGet(&http.Client{Timeout: 10 * time.Second}, p.url+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	want := fmt.Sprintf(`disperse_build_info{goversion=%q,version=`, runtime.Version())
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, want) && strings.HasSuffix(strings.TrimSpace(line), "} 1") {
			return
		}
	}
	t.Fatalf("/metrics has no line starting %s and ending in 1", want)
}
