package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestE2EConditionalWrites drives the built binary on its defaults:
// If-None-Match: * creates a key only once, a DELETE with a stale If-Match
// answers 412 and keeps the key, one with the current ETag deletes it; a
// JSON PUT with ?ttl= expires. Blobs take the same headers against their
// ETag, and a GET answers 412 or 304 by them.
func TestE2EConditionalWrites(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir())
	p.waitReady(t)
	hc := &http.Client{}
	send := func(method, path, body string, headers ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	if code, _, body := send(http.MethodPut, "/cache/once", "a", "If-None-Match", "*"); code != http.StatusOK {
		t.Fatalf("first create: %d %s", code, body)
	}
	if code, _, body := send(http.MethodPut, "/cache/once", "b", "If-None-Match", "*"); code != http.StatusPreconditionFailed || !strings.Contains(body, `"precondition_failed"`) {
		t.Fatalf("second create: %d %s, want 412 precondition_failed", code, body)
	}
	_, h, _ := send(http.MethodGet, "/cache/once", "")
	etag := h.Get("ETag")
	stale := `"` + strings.Repeat("0", 31) + `1"`
	if code, _, body := send(http.MethodDelete, "/cache/once", "", "If-Match", stale); code != http.StatusPreconditionFailed {
		t.Fatalf("DELETE with a stale If-Match: %d %s", code, body)
	}
	if code, _, body := send(http.MethodGet, "/cache/once", ""); code != http.StatusOK || body != "a" {
		t.Fatalf("after the refused DELETE: %d %q", code, body)
	}
	if code, _, body := send(http.MethodDelete, "/cache/once", "", "If-Match", etag); code != http.StatusNoContent {
		t.Fatalf("DELETE with the current ETag: %d %s", code, body)
	}
	if code, _, body := send(http.MethodGet, "/cache/once", "", "If-Match", etag); code != http.StatusNotFound {
		t.Fatalf("GET of a deleted key with If-Match: %d %s", code, body)
	}

	if code, _, body := send(http.MethodPut, "/blob/doc", "v1", "If-None-Match", "*"); code != http.StatusCreated {
		t.Fatalf("blob create: %d %s", code, body)
	}
	if code, _, body := send(http.MethodPut, "/blob/doc", "v2", "If-None-Match", "*"); code != http.StatusPreconditionFailed || !strings.Contains(body, `"precondition_failed"`) {
		t.Fatalf("second blob create: %d %s, want 412 precondition_failed", code, body)
	}
	_, h, _ = send(http.MethodGet, "/blob/doc", "")
	v1 := h.Get("ETag")
	if code, _, body := send(http.MethodGet, "/blob/doc", "", "If-None-Match", v1); code != http.StatusNotModified || body != "" {
		t.Fatalf("blob GET with its own ETag in If-None-Match: %d %q, want 304", code, body)
	}
	if code, _, body := send(http.MethodPut, "/blob/doc", "v2", "If-Match", v1); code != http.StatusCreated {
		t.Fatalf("blob replace with If-Match: %d %s", code, body)
	}
	if code, _, body := send(http.MethodGet, "/blob/doc", "", "If-Match", v1); code != http.StatusPreconditionFailed {
		t.Fatalf("blob GET with a replaced ETag in If-Match: %d %s, want 412", code, body)
	}
	if code, _, body := send(http.MethodDelete, "/blob/doc", "", "If-Match", v1); code != http.StatusPreconditionFailed {
		t.Fatalf("blob DELETE with a replaced ETag: %d %s", code, body)
	}
	if code, _, body := send(http.MethodGet, "/blob/doc", ""); code != http.StatusOK || body != "v2" {
		t.Fatalf("blob after the refused DELETE: %d %q", code, body)
	}

	// Concurrent creates of one key: exactly one wins.
	codes := make([]int, 16)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPut, p.url+"/cache/race", strings.NewReader(fmt.Sprint(i)))
			req.Header.Set("If-None-Match", "*")
			if resp, err := hc.Do(req); err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	won := 0
	for _, code := range codes {
		switch code {
		case http.StatusOK:
			won++
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("concurrent creates answered %v", codes)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent creates won, want 1: %v", won, len(codes), codes)
	}

	req, _ := http.NewRequest(http.MethodPut, p.url+"/cache/json?ttl=1h", strings.NewReader(`{"value":"v"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), `"expires_at":null`) {
		t.Fatalf("JSON PUT with ?ttl=1h: %d %s, want an expiry", resp.StatusCode, b)
	}
}
