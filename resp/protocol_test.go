package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// rawConn is a bare TCP connection for what a client library would not
// send.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads exactly want from the connection.
func (c *rawConn) expect(want string) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.br, got); err != nil || string(got) != want {
		c.t.Fatalf("read %q (%v), want %q", got, err, want)
	}
}

// expectClosed checks that the server closed the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		c.t.Fatalf("read %q (%v), want the connection closed", b, err)
	}
}

// tunes applies each non-nil f in turn.
func tunes(fs ...func(*Config)) func(*Config) {
	return func(c *Config) {
		for _, f := range fs {
			if f != nil {
				f(c)
			}
		}
	}
}

func cmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func TestUnknownCommandAndArity(t *testing.T) {
	n := startNode(t, nil)
	c := dialRaw(t, n.addr)
	// Redis's exact texts; the connection stays open after each.
	c.send(cmd("FOO", "a", "b"))
	c.expect("-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n")
	c.send(cmd("foo"))
	c.expect("-ERR unknown command 'foo', with args beginning with: \r\n")
	c.send(cmd("GET"))
	c.expect("-ERR wrong number of arguments for 'get' command\r\n")
	c.send(cmd("get", "a", "b"))
	c.expect("-ERR wrong number of arguments for 'get' command\r\n")
	c.send(cmd("MULTI"))
	c.expect("-" + msgTx + "\r\n")
	c.send(cmd("SUBSCRIBE", "ch"))
	c.expect("-" + msgPubSub + "\r\n")
	long := strings.Repeat("x", 300)
	c.send(cmd("NOPE", long))
	c.expect("-ERR unknown command 'NOPE', with args beginning with: '" + long[:128] + "' \r\n")
	c.send("PING\r\n")
	c.expect("+PONG\r\n")
}

// TestMalformedRequests: a request the server cannot frame gets Redis's
// protocol error and the connection is closed; the node serves on.
func TestMalformedRequests(t *testing.T) { testMalformedRequests(t, nil) }

func testMalformedRequests(t *testing.T, mode func(*Config)) {
	n := startNode(t, tunes(mode, func(c *Config) { c.MaxValueBytes = 1000 }))
	for _, tc := range []struct{ in, reply string }{
		{"*1\r\n$2000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\n$536870912\r\n" + strings.Repeat("x", 4096), "-ERR Protocol error: invalid bulk length\r\n"},
		{"*3000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"*1x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"SET \"unbalanced\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
	} {
		c := dialRaw(t, n.addr)
		c.send(cmd("SET", "k", "v") + tc.in)
		c.expect("+OK\r\n" + tc.reply)
		c.expectClosed()
	}
	// An endless array header: the server cuts the request at its bound
	// without holding more than that.
	c := dialRaw(t, n.addr)
	c.send("*1000000\r\n")
	chunk := []byte(strings.Repeat("$1\r\nx\r\n", 10000))
	var err error
	for range 200 {
		if _, err = c.nc.Write(chunk); err != nil {
			break
		}
	}
	c.expect("-ERR Protocol error: the command is larger than the ")
	r := n.client(t)
	if v, err := r.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("the node after bad clients: %q %v", v, err)
	}
}

// TestPipelineDepth: thousands of requests in one write are all answered,
// in order.
func TestPipelineDepth(t *testing.T) {
	n := startNode(t, nil)
	c := dialRaw(t, n.addr)
	const depth = 20000
	var req, want bytes.Buffer
	for i := range depth {
		k := fmt.Sprintf("p%d", i%100)
		req.WriteString(cmd("SET", k, fmt.Sprint(i)))
		req.WriteString(cmd("GET", k))
		want.WriteString("+OK\r\n")
		fmt.Fprintf(&want, "$%d\r\n%d\r\n", len(fmt.Sprint(i)), i)
	}
	go c.nc.Write(req.Bytes())
	c.expect(want.String())

	// go-redis's pipeline, too.
	r := n.client(t)
	pipe := r.Pipeline()
	for i := range 1000 {
		pipe.Incr(ctx, "pc")
		_ = i
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil || cmds[999].(*redis.IntCmd).Val() != 1000 {
		t.Fatalf("pipeline: %v", err)
	}
}

func TestInlineCommands(t *testing.T) {
	n := startNode(t, nil)
	c := dialRaw(t, n.addr)
	c.send("SET greeting \"hello world\"\r\nGET greeting\nPING\r\n\r\nECHO 'a b'\r\n")
	c.expect("+OK\r\n$11\r\nhello world\r\n+PONG\r\n$3\r\na b\r\n")
	c.send("QUIT\r\n")
	c.expect("+OK\r\n")
	c.expectClosed()
}

// TestSlowClients: a client that stops half-way through a request, or
// stops reading its replies, is cut after StallTimeout; others are served.
func TestSlowClients(t *testing.T) { testSlowClients(t, nil) }

func testSlowClients(t *testing.T, mode func(*Config)) {
	n := startNode(t, tunes(mode, func(c *Config) { c.StallTimeout = 300 * time.Millisecond }))
	r := n.client(t)
	r.Set(ctx, "big", strings.Repeat("v", 1<<20), 0)

	half := dialRaw(t, n.addr)
	half.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
	half.expectClosed()

	// A client that sends GETs of a 1 MiB value and never reads: the
	// server's writes block, then it gives up on the connection.
	deaf, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	if tc, ok := deaf.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	go func() {
		req := []byte(strings.Repeat(cmd("GET", "big"), 100))
		for range 100 {
			if _, err := deaf.Write(req); err != nil {
				return
			}
		}
	}()
	waitFor(t, 20*time.Second, "the deaf client to be cut", func() bool { return n.srv.clients() <= 1 })
	if v, err := r.StrLen(ctx, "big").Result(); err != nil || v != 1<<20 {
		t.Fatalf("the node after slow clients: %d %v", v, err)
	}
}

func TestIdleTimeoutAndMaxClients(t *testing.T) { testIdleTimeoutAndMaxClients(t, nil) }

func testIdleTimeoutAndMaxClients(t *testing.T, mode func(*Config)) {
	n := startNode(t, tunes(mode, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond; c.MaxClients = 2 }))
	a := dialRaw(t, n.addr)
	a.send("PING\r\n")
	a.expect("+PONG\r\n")
	b := dialRaw(t, n.addr)
	b.send("PING\r\n")
	b.expect("+PONG\r\n")
	third := dialRaw(t, n.addr)
	third.expect("-ERR max number of clients reached\r\n")
	third.expectClosed()
	a.expectClosed() // idle
}

// TestPipelinedSets: a pipeline of SETs is applied in runs; replies come in
// order, a bad one answers its own error, and a key set twice holds the
// later value.
func TestPipelinedSets(t *testing.T) { testPipelinedSets(t, nil) }

func testPipelinedSets(t *testing.T, mode func(*Config)) {
	n := startNode(t, mode)
	c := dialRaw(t, n.addr)
	var req, want bytes.Buffer
	for i := range 1000 {
		switch {
		case i == 500:
			req.WriteString(cmd("SET", "", "x"))
			want.WriteString("-ERR empty keys are not allowed\r\n")
		case i == 700:
			req.WriteString(cmd("GET", "k3"))
			want.WriteString("$3\r\n693\r\n")
		default:
			req.WriteString(cmd("set", fmt.Sprintf("k%d", i%10), fmt.Sprint(i)))
			want.WriteString("+OK\r\n")
		}
	}
	req.WriteString(cmd("MGET", "k0", "k9"))
	want.WriteString("*2\r\n$3\r\n990\r\n$3\r\n999\r\n")
	go c.nc.Write(req.Bytes())
	c.expect(want.String())
}
