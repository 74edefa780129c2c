package cluster

import (
	"bytes"
	"crypto/rand"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/hashicorp/memberlist"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// keyed is a tune that gives every node keys and node-0 a log buffer.
func keyed(keys [][]byte, logs *logBuffer) func(*Config, *engine.Config) {
	return func(cfg *Config, _ *engine.Config) {
		cfg.Keys = keys
		if logs != nil && cfg.Name == "node-0" {
			cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
	}
}

// intruder is a memberlist without the cluster key.
func intruder(t *testing.T, keys ...[]byte) *memberlist.Memberlist {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.Name = "intruder"
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = "127.0.0.1", 0, 0
	mc.Logger = log.New(io.Discard, "", 0)
	if len(keys) > 0 {
		ring, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		mc.Keyring = ring
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return ml
}

func TestStrangersCannotJoinOrInject(t *testing.T) {
	logs := &logBuffer{}
	c := newTestCluster(t, 2, keyed([][]byte{newKey(t)}, logs))
	n0 := c.nodes[0].node
	for _, ml := range []*memberlist.Memberlist{intruder(t), intruder(t, newKey(t))} {
		if got, err := ml.Join([]string{n0.GossipAddr()}); err == nil || got != 0 {
			t.Fatalf("a memberlist without the cluster key joined: %d, %v", got, err)
		}
	}
	for _, m := range n0.Members() {
		if m.Name == "intruder" {
			t.Fatal("the intruder is listed as a member")
		}
	}
	waitFor(t, 5*time.Second, "one clear line about the foreign gossip", func() bool {
		return logs.count("does not hold this node's cluster key") == 1
	})

	// A batch sent straight to the node's gossip port is dropped by
	// memberlist before it is read.
	ml := intruder(t)
	host, port, _ := net.SplitHostPort(n0.GossipAddr())
	p, _ := strconv.Atoi(port)
	before := counterValue(t, n0.metrics.batchesReceived)
	forged := encodeBatch(header{from: "node-1"}, []engine.Entry{{Key: "forged", Value: []byte("x"), Version: n0.clock.Version()}})
	if err := ml.SendReliable(&memberlist.Node{Name: "node-0", Addr: net.ParseIP(host), Port: uint16(p)}, forged); err != nil {
		t.Fatal(err)
	}
	put(t, c.nodes[1].node, "legit", "v") // a batch that does arrive after it
	c.waitValue(5*time.Second, "legit", []byte("v"))
	if _, ok := n0.Get("forged"); ok {
		t.Fatal("a batch from a stranger was applied")
	}
	if got := counterValue(t, n0.metrics.batchesReceived) - before; got != 1 {
		t.Fatalf("%v batches received, want only the member's", got)
	}
}

func TestUnsignedSyncRequestsAreRefused(t *testing.T) {
	key := newKey(t)
	c := newTestCluster(t, 2, keyed([][]byte{key}, nil))
	n0, n1 := c.nodes[0].node, c.nodes[1].node
	body := func(key string) io.Reader {
		var b bytes.Buffer
		fw := newFrameWriter(&b, 1<<20)
		e := engine.Entry{Key: key, Value: []byte("x"), Version: n0.clock.Version()}
		fw.add(&e)
		fw.flush()
		return &b
	}
	post := func(sign func(*http.Request), key string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+n0.cfg.HTTPAddr+pathPush, body(key))
		if err != nil {
			t.Fatal(err)
		}
		if sign != nil {
			sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	wrong, err := newPeerAuth("node-1", time.Minute, time.Now, [][]byte{newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := newPeerAuth("node-1", time.Minute, func() time.Time { return time.Now().Add(-2 * time.Minute) }, [][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	for name, sign := range map[string]func(*http.Request){"unsigned": nil, "wrong key": wrong.sign, "old signature": stale.sign} {
		if code := post(sign, "forged-"+name); code != http.StatusUnauthorized {
			t.Fatalf("%s push answered %d, want 401", name, code)
		}
		if _, ok := n0.Get("forged-" + name); ok {
			t.Fatalf("a %s push was applied", name)
		}
	}
	if code := post(n1.auth.sign, "signed"); code != http.StatusNoContent {
		t.Fatalf("a signed push answered %d", code)
	}
	if _, ok := n0.Get("signed"); !ok {
		t.Fatal("a signed push was not applied")
	}
}

func TestClusterKeyRotationWithoutDowntime(t *testing.T) {
	a, b := newKey(t), newKey(t)
	c := newTestCluster(t, 3, keyed([][]byte{a}, nil))
	step := func(name string, keys ...[]byte) {
		t.Helper()
		for _, tn := range c.nodes {
			if err := tn.node.SetClusterKeys(keys); err != nil {
				t.Fatalf("%s on %s: %v", name, tn.name, err)
			}
		}
		for i, tn := range c.nodes {
			key := name + "-" + strconv.Itoa(i)
			put(t, tn.node, key, "v")
			c.waitValue(5*time.Second, key, []byte("v"))
		}
		c.waitAlive(15*time.Second, c.names()...)
	}
	step("add", a, b)
	step("switch", b, a)
	step("drop", b)

	// Only the new key opens the cluster now.
	if got, err := intruder(t, a).Join([]string{c.nodes[0].node.GossipAddr()}); err == nil || got != 0 {
		t.Fatalf("the dropped key still joins: %d, %v", got, err)
	}
	c.nodes = append(c.nodes, &testNode{name: "node-3", dir: t.TempDir()})
	c.tune = keyed([][]byte{b}, nil)
	c.start(3)
	c.waitAlive(10*time.Second, c.names()...)
	c.waitReady(10*time.Second, 3)
}
