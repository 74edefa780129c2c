package resp

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// onLinux is whether plain TCP connections start in the event loop.
var onLinux = runtime.GOOS == "linux"

// dialServed dials addr and waits for an answer to PING, so that the
// server has taken the connection up (into its loop, on Linux).
func dialServed(t testing.TB, addr string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	c.send("PING\r\n")
	c.expect("+PONG\r\n")
	return c
}

// TestLoopHandsOffAndKeepsOrder: plain connections are served by the event
// loop; a write it does not run itself moves the connection to a goroutine
// in the middle of a pipeline, with the replies in order and nothing lost
// or run twice; QUIT in the loop answers and closes.
func TestLoopHandsOffAndKeepsOrder(t *testing.T) {
	n := startNode(t, nil)
	a := dialServed(t, n.addr)
	b := dialRaw(t, n.addr)
	b.send(cmd("SET", "b", "1") + cmd("GET", "b") + cmd("HELLO", "2") + cmd("CLIENT", "SETNAME", "bee"))
	b.expect("+OK\r\n$1\r\n1\r\n*14\r\n")
	b.br.ReadString('+') // the rest of HELLO's reply, up to CLIENT's
	b.expect("OK\r\n")
	if onLinux && n.srv.looped.Load() != 2 {
		t.Fatalf("%d connections in the event loop, want 2", n.srv.looped.Load())
	}
	// SETs, then INCR (not the loop's) in the same write, then more.
	a.send(cmd("SET", "x", "1") + cmd("SET", "y", "2") + cmd("INCR", "x") + cmd("GET", "x") +
		cmd("SET", "y", "3") + cmd("GET", "y") + cmd("DEL", "y") + cmd("GET", "y"))
	a.expect("+OK\r\n+OK\r\n:2\r\n$1\r\n2\r\n+OK\r\n$1\r\n3\r\n:1\r\n$-1\r\n")
	if onLinux && n.srv.looped.Load() != 1 {
		t.Fatalf("%d connections in the event loop after INCR, want 1", n.srv.looped.Load())
	}
	a.send(cmd("SET", "x", "5") + cmd("GET", "x"))
	a.expect("+OK\r\n$1\r\n5\r\n")
	b.send(cmd("GET", "x") + cmd("CLIENT", "GETNAME") + cmd("QUIT") + cmd("SET", "after", "quit"))
	b.expect("$1\r\n5\r\n$3\r\nbee\r\n+OK\r\n")
	b.expectClosed()
	if v, err := n.client(t).Exists(ctx, "after").Result(); err != nil || v != 0 {
		t.Fatalf("a SET after QUIT ran: %d %v", v, err)
	}
}

// TestLoopServesClientLibraries: a client that opens with HELLO 3 and
// CLIENT SETINFO, as go-redis does, is served by the loop afterwards.
func TestLoopServesClientLibraries(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t, func(o *redis.Options) { o.Protocol, o.DisableIdentity, o.PoolSize = 3, false, 1 })
	for i := range 100 {
		if err := r.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := r.Get(ctx, fmt.Sprint("k", i)).Int(); err != nil || v != i {
			t.Fatalf("k%d = %d %v", i, v, err)
		}
	}
	if onLinux && n.srv.looped.Load() != 1 {
		t.Fatalf("%d connections in the event loop, want 1", n.srv.looped.Load())
	}
}

// TestLoopBatchesAcrossConnections: many connections pipelining SETs of
// their own keys and of one shared key at once. Each sees its own writes
// in order, the shared key ends with one of the last values written, and
// every connection's last value of its keys is stored.
func TestLoopBatchesAcrossConnections(t *testing.T) {
	n := startNode(t, nil)
	const conns, rounds = 16, 50
	var wg sync.WaitGroup
	for i := range conns {
		c := dialRaw(t, n.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req, want bytes.Buffer
			for r := range rounds {
				own := fmt.Sprintf("c%d-%d", i, r%5)
				v := fmt.Sprintf("%d.%d", i, r)
				req.WriteString(cmd("SET", own, v) + cmd("SET", "shared", v) + cmd("GET", own))
				want.WriteString("+OK\r\n+OK\r\n" + fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
				if r%17 == 16 { // a command of the goroutine path: a hand-off
					req.WriteString(cmd("STRLEN", own))
					want.WriteString(fmt.Sprintf(":%d\r\n", len(v)))
				}
			}
			c.send(req.String())
			c.expect(want.String())
		}()
	}
	wg.Wait()
	r := n.client(t)
	for i := range conns {
		for k := range 5 {
			want := fmt.Sprintf("%d.%d", i, rounds-5+k)
			if v, err := r.Get(ctx, fmt.Sprintf("c%d-%d", i, k)).Result(); err != nil || v != want {
				t.Fatalf("c%d-%d = %q %v, want %q", i, k, v, err, want)
			}
		}
	}
	v, err := r.Get(ctx, "shared").Result()
	if err != nil || !strings.HasSuffix(v, fmt.Sprintf(".%d", rounds-1)) {
		t.Fatalf("shared = %q %v, want a last round's value", v, err)
	}
	waitFor(t, 5*time.Second, "connections to be counted", func() bool { return n.srv.clients() == conns+1 })
}

// TestLoopSlowReader: replies that the socket does not take at once are
// sent in full, in order, after the client starts reading again.
func TestLoopSlowReader(t *testing.T) {
	n := startNode(t, nil)
	big := strings.Repeat("v", 256<<10)
	n.client(t).Set(ctx, "big", big, 0)
	c := dialServed(t, n.addr)
	before := n.srv.looped.Load()
	var req, want strings.Builder
	for i := range 64 {
		req.WriteString(cmd("GET", "big") + cmd("SET", "n", fmt.Sprint(i)))
		want.WriteString(fmt.Sprintf("$%d\r\n%s\r\n+OK\r\n", len(big), big))
	}
	c.send(req.String())
	if onLinux {
		waitFor(t, 10*time.Second, "the slow reader to leave the loop", func() bool { return n.srv.looped.Load() == before-1 })
	}
	c.expect(want.String())
	c.send(cmd("GET", "n"))
	c.expect("$2\r\n63\r\n")
}

// TestLoopShutdown: connections in the loop, one of them in the middle of
// a request, end at shutdown and shutdown returns.
func TestLoopShutdown(t *testing.T) {
	n := startNode(t, nil)
	idle := dialServed(t, n.addr)
	half := dialRaw(t, n.addr)
	half.send(cmd("SET", "k", "v") + "*3\r\n$3\r\nSET\r\n")
	half.expect("+OK\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.srv.Shutdown(ctx) }()
	idle.expectClosed()
	half.expectClosed()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n.srv.clients() != 0 || n.srv.looped.Load() != 0 {
		t.Fatalf("%d clients, %d in the loop after shutdown", n.srv.clients(), n.srv.looped.Load())
	}
}

// TestGoroutinePath runs the protocol's edge cases with a goroutine per
// connection from the start, the path TLS connections and hand-offs take.
func TestGoroutinePath(t *testing.T) {
	for name, test := range map[string]func(*testing.T, func(*Config)){
		"malformed":     testMalformedRequests,
		"slow clients":  testSlowClients,
		"idle and max":  testIdleTimeoutAndMaxClients,
		"pipelined set": testPipelinedSets,
	} {
		t.Run(name, func(t *testing.T) {
			test(t, func(c *Config) { c.goroutines = true })
		})
	}
}

// TestLoopLargePipeline: a pipeline of SETs far larger than the read
// buffer, read over many rounds and cut into batches where a key comes
// again, is stored intact.
func TestLoopLargePipeline(t *testing.T) {
	n := startNode(t, nil)
	c := dialRaw(t, n.addr)
	const sets = 400
	value := func(i int) string { return strings.Repeat(fmt.Sprintf("%03d", i), 300+i) }
	var req, want strings.Builder
	for i := range sets {
		if i%10 == 0 { // the same key twice: a batch ends after the first
			req.WriteString(cmd("SET", "again", "1") + cmd("SET", "again", "2"))
			want.WriteString("+OK\r\n+OK\r\n")
		}
		req.WriteString(cmd("SET", fmt.Sprintf("k%d", i), value(i)))
		want.WriteString("+OK\r\n")
	}
	go c.nc.Write([]byte(req.String()))
	c.expect(want.String())
	r := n.client(t)
	for i := range sets {
		if v, err := r.Get(ctx, fmt.Sprintf("k%d", i)).Result(); err != nil || v != value(i) {
			t.Fatalf("k%d: %d bytes (%v), want %d", i, len(v), err, len(value(i)))
		}
	}
}

// gatedStore holds every PutBatch until the test lets it go.
type gatedStore struct {
	Store
	entered chan struct{}
	release chan struct{}
}

func (g gatedStore) PutBatch(ctx context.Context, ws []cluster.Write) ([]engine.Entry, []error) {
	select { // once the test ends (release closed), batches pass
	case g.entered <- struct{}{}:
	case <-g.release:
	}
	<-g.release
	return g.Store.PutBatch(ctx, ws)
}

// TestLoopReadsDoNotWaitForCommits: a GET that comes in the same round as
// another client's SET is answered while that SET's batch is still being
// committed.
func TestLoopReadsDoNotWaitForCommits(t *testing.T) {
	n := startNode(t, nil)
	n.client(t).Set(ctx, "k", "old", 0)
	g := gatedStore{n.node, make(chan struct{}), make(chan struct{})}
	srv, err := New(Config{}, g)
	if err != nil {
		t.Fatal(err)
	}
	addr := listen(t, srv)
	t.Cleanup(func() { close(g.release) }) // before the server's shutdown
	writer, reader := dialServed(t, addr), dialServed(t, addr)
	writer.send(cmd("SET", "a", "1"))
	<-g.entered // the loop is in the first batch's commit
	writer.send(cmd("SET", "b", "2"))
	reader.send(cmd("GET", "k"))
	g.release <- struct{}{}
	writer.expect("+OK\r\n")
	// The SET and the GET that waited meet in the next round.
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no second batch")
	}
	reader.expect("$3\r\nold\r\n") // while the batch is held
	g.release <- struct{}{}
	writer.expect("+OK\r\n")
}
