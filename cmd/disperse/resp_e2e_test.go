package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func respClient(t testing.TB, p *proc) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: p.resp, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestE2ERESPCrossProtocol: one store behind both protocols, on the built
// binary: a SET is a GET /cache and the other way round, an EXPIRE is the
// X-Expires-At of GET /cache, and RESP writes reach a second node.
func TestE2ERESPCrossProtocol(t *testing.T) {
	needBinary(t)
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "--fsync", "never")
	a.waitReady(t)
	r := respClient(t, a)
	if err := r.Set(ctx, "from-resp", "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(a.url + "/cache/from-resp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET /cache of a RESP SET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if code, body, _ := httpGet(http.DefaultClient, a.url+"/cache/from-resp"); code != 200 || body != "hello" {
		t.Fatalf("GET /cache: %d %q", code, body)
	}
	if code, err := httpPut(http.DefaultClient, a.url+"/cache/from-http", "over http"); err != nil || code != 200 {
		t.Fatalf("PUT: %d %v", code, err)
	}
	if v, err := r.Get(ctx, "from-http").Result(); err != nil || v != "over http" {
		t.Fatalf("GET over RESP of a PUT: %q %v", v, err)
	}
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	if ok, err := r.ExpireAt(ctx, "from-http", at).Result(); err != nil || !ok {
		t.Fatalf("EXPIREAT: %v %v", ok, err)
	}
	resp, err = http.Get(a.url + "/cache/from-http")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Expires-At")); err != nil || !got.Equal(at) {
		t.Errorf("X-Expires-At %q after EXPIREAT %v (%v)", resp.Header.Get("X-Expires-At"), at, err)
	}
	if resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("EXPIRE changed the content type to %q", resp.Header.Get("Content-Type"))
	}
	if err := r.Del(ctx, "from-resp").Err(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := httpGet(http.DefaultClient, a.url+"/cache/from-resp"); code != 404 {
		t.Errorf("GET /cache after DEL: %d", code)
	}

	// A second node gets the RESP writes.
	b := startNode(t, t.TempDir(), "--fsync", "never", "--name", "e2e-b", "--join", gossipAddrOf(t, a))
	b.waitReady(t)
	r.Set(ctx, "replicated", "yes", 0)
	r.Incr(ctx, "counter")
	rb := respClient(t, b)
	waitFor(t, 20*time.Second, "the RESP writes on the second node", func() bool {
		v, _ := rb.Get(ctx, "replicated").Result()
		n, _ := rb.Get(ctx, "counter").Int()
		return v == "yes" && n == 1
	})
	if code, body, _ := httpGet(http.DefaultClient, b.url+"/cache/replicated"); code != 200 || body != "yes" {
		t.Errorf("GET /cache on the second node: %d %q", code, body)
	}

	// A pipeline many times the read buffer: the node passes each value
	// from its read buffer, which the next bytes overwrite, so what reaches
	// the peer must be the store's copy.
	const piped = 3000
	value := func(i int) string { return fmt.Sprintf("%0100d", i) }
	pipe := r.Pipeline()
	keys := make([]string, piped)
	for i := range piped {
		keys[i] = fmt.Sprint("piped-", i)
		pipe.Set(ctx, keys[i], value(i), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var wrong string
	defer func() {
		if t.Failed() && wrong != "" {
			t.Logf("on the second node: %s", wrong)
		}
	}()
	waitFor(t, 20*time.Second, "the pipelined values on the second node", func() bool {
		got, err := rb.MGet(ctx, keys...).Result()
		if err != nil {
			return false
		}
		for i, v := range got {
			if v != value(i) {
				wrong = fmt.Sprintf("%s = %v, want %s", keys[i], v, value(i))
				return false
			}
		}
		return true
	})
}

// gossipAddrOf reads a node's gossip address from its command line.
func gossipAddrOf(t testing.TB, p *proc) string {
	t.Helper()
	for i, a := range p.cmd.Args {
		if a == "--gossip-port" && i+1 < len(p.cmd.Args) {
			return "127.0.0.1:" + p.cmd.Args[i+1]
		}
	}
	t.Fatal("no --gossip-port")
	return ""
}

// TestE2ERESPCrashKeepsAcknowledgedSets: SIGKILL under a SET load over
// RESP with --fsync always; after the restart every SET answered +OK is
// there with its value (or a later one of the same client, in flight).
func TestE2ERESPCrashKeepsAcknowledgedSets(t *testing.T) {
	needBinary(t)
	ctx := context.Background()
	dir := t.TempDir()
	p := startNode(t, dir, "--fsync", "always")
	p.waitReady(t)
	const clients = 32
	last := make([]atomic.Int64, clients) // each client's last acknowledged counter
	var acked atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			r := redis.NewClient(&redis.Options{Addr: p.resp, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
			defer r.Close()
			for i := int64(1); ; i++ {
				// Each client overwrites its own key and writes a new one.
				if r.Set(ctx, fmt.Sprintf("c%d", c), i, 0).Err() != nil {
					return
				}
				if r.Set(ctx, fmt.Sprintf("c%d/%d", c, i), i, 0).Err() != nil {
					return
				}
				last[c].Store(i)
				acked.Add(1)
			}
		})
	}
	waitFor(t, 60*time.Second, "SETs under load", func() bool { return acked.Load() >= 2000 })
	if n := metricValue(t, p, "disperse_resp_event_loop_clients"); runtime.GOOS == "linux" && n != clients {
		t.Errorf("%v connections in the event loop, want all %d", n, clients)
	}
	p.signal(t, syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	wg.Wait()

	q := startNode(t, dir, "--fsync", "always")
	q.waitReady(t)
	r := respClient(t, q)
	for c := range clients {
		n := last[c].Load()
		if n == 0 {
			continue
		}
		got, err := r.Get(ctx, fmt.Sprintf("c%d", c)).Int64()
		if err != nil || got < n || got > n+1 {
			t.Errorf("client %d: key holds %d (%v), last acknowledged %d", c, got, err, n)
		}
		for i := int64(1); i <= n; i++ {
			if v, err := r.Get(ctx, fmt.Sprintf("c%d/%d", c, i)).Int64(); err != nil || v != i {
				t.Fatalf("client %d: acknowledged SET c%d/%d lost: %d %v", c, c, i, v, err)
			}
		}
	}
	t.Logf("%d acknowledged SETs checked after SIGKILL", 2*acked.Load())
}

// TestE2ERESPTokens: with --auth-token, the Redis port asks for the same
// token: nothing runs before AUTH, and the token's scope (admin) allows
// everything after.
func TestE2ERESPTokens(t *testing.T) {
	needBinary(t)
	ctx := context.Background()
	tok := "0123456789abcdef0123456789abcdef"
	p := startNode(t, t.TempDir(), "--fsync", "never", "--auth-token", tok)
	p.waitReady(t)
	anon := respClient(t, p)
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		t.Errorf("SET without a token: %v", err)
	}
	wrong := redis.NewClient(&redis.Options{Addr: p.resp, Password: "nope", DisableIdentity: true, MaxRetries: -1})
	defer wrong.Close()
	if err := wrong.Ping(ctx).Err(); err == nil || err.Error() != "WRONGPASS invalid username-password pair or user is disabled." {
		t.Errorf("a wrong token: %v", err)
	}
	r := redis.NewClient(&redis.Options{Addr: p.resp, Password: tok, DisableIdentity: true, MaxRetries: -1})
	defer r.Close()
	if err := r.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with the token: %v", err)
	}
	if err := r.FlushAll(ctx).Err(); err != nil {
		t.Errorf("FLUSHALL with the admin token: %v", err)
	}
}

// TestE2ERESPMaxConns: --max-conns bounds the Redis port's connections as
// it bounds the API's: one more is told so, as Redis tells it, and closed;
// once one closes, a new one is served.
func TestE2ERESPMaxConns(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--max-conns", "2")
	p.waitReady(t)
	dial := func() (net.Conn, string) {
		c, err := net.Dial("tcp", p.resp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return c, strings.TrimSpace(line)
	}
	var held []net.Conn
	for range 2 {
		c, line := dial()
		if line != "+PONG" {
			t.Fatalf("connection within --max-conns: %q", line)
		}
		held = append(held, c)
	}
	c, line := dial()
	c.Close()
	if line != "-ERR max number of clients reached" {
		t.Fatalf("a third connection with --max-conns 2: %q", line)
	}
	held[0].Close()
	eventually(t, 10*time.Second, "a new connection served after one closed", func() error {
		c, line := dial()
		c.Close()
		if line != "+PONG" {
			return fmt.Errorf("answer %q", line)
		}
		return nil
	})
	held[1].Close()
}
