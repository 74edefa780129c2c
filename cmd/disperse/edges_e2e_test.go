package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestE2EEdgesOnDefaults drives the built binary on its defaults through
// the edges of the contract: a key that is not UTF-8 is refused over HTTP
// and over the Redis protocol, values come with nosniff, a 405 is counted
// under its route, and the log gives durations in seconds.
func TestE2EEdgesOnDefaults(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir())
	p.waitReady(t)
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := do(http.MethodPut, "/cache/%FF%FE", "v"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT of a key that is not UTF-8: %d, want 400", resp.StatusCode)
	}
	do(http.MethodPut, "/cache/page", "<b>hi</b>")
	if resp := do(http.MethodGet, "/cache/page", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET of a value: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if resp := do(http.MethodPost, "/cache/page", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", resp.StatusCode)
	}
	if v := scrape(t, p)[`disperse_http_requests_total{method="POST",route="/cache/*key",status="405"}`]; v != 1 {
		t.Fatalf("405s counted under /cache/*key: %v, want 1", v)
	}

	conn, err := net.DialTimeout("tcp", p.resp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "*3\r\n$3\r\nSET\r\n$2\r\n\xff\xfe\r\n$1\r\nv\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "-ERR keys must be valid UTF-8") {
		t.Fatalf("SET of a key that is not UTF-8 over RESP: %q %v", line, err)
	}

	// Clients that reset their connections halfway through a request, on
	// both listeners: once the node has closed their connections it logs no
	// panic, and it serves the next client.
	const httpOpen, respOpen = "disperse_http_connections_open", "disperse_resp_connected_clients"
	before := scrape(t, p)
	for _, c := range []struct{ addr, half string }{
		{strings.TrimPrefix(p.url, "http://"), "PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"},
		{p.resp, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc"},
	} {
		for i := 0; i < 20; i++ {
			rc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(rc, c.half)
			rc.(*net.TCPConn).SetLinger(0)
			rc.Close()
		}
	}
	waitFor(t, 10*time.Second, "the reset connections closed", func() bool {
		m := scrape(t, p)
		return m[httpOpen] <= before[httpOpen] && m[respOpen] <= before[respOpen]
	})
	if log := p.stderr.String(); strings.Contains(log, "panic") {
		t.Fatalf("the node logged a panic after clients reset their connections:\n%s", tail(log, 20))
	}
	do(http.MethodPut, "/cache/after", "v")
	if resp := do(http.MethodGet, "/cache/after", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after clients reset their connections: %d", resp.StatusCode)
	}

	for _, l := range strings.Split(p.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "recovered" {
			continue
		}
		if _, ok := m["took_seconds"].(float64); !ok {
			t.Fatalf("the recovered line gives no took_seconds number: %s", l)
		}
		return
	}
	t.Fatalf("no recovered line in the log:\n%s", p.stderr.String())
}
