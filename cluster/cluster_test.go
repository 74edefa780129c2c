package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testNode is one member of a testCluster: its engine, its node, the HTTP
// server of its sync routes; the data directory outlives a restart.
type testNode struct {
	name string
	dir  string
	eng  *engine.Engine
	node *Node
	srv  *http.Server
	// noJoin: start without Config.Join (the node relies on the peers it
	// remembers).
	noJoin bool
}

// testCluster is a set of real memberlist nodes on 127.0.0.1, each with
// its own engine, sharing one Faults.
type testCluster struct {
	t      testing.TB
	faults *Faults
	nodes  []*testNode
	tune   func(*Config, *engine.Config)
	// wrap, if set, stands between a node and its engine.
	wrap func(name string, s Store) Store
}

// testConfig is a short-interval configuration for in-process clusters.
func testConfig(name string) Config {
	c := DefaultConfig()
	c.Name = name
	c.GossipPort = 0
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.AntiEntropyInterval = 300 * time.Millisecond
	c.LeaveTimeout = 500 * time.Millisecond
	return c
}

// newTestCluster starts n nodes, joins them and waits until every node
// sees every other alive. tune, if not nil, adjusts each node's configs.
func newTestCluster(t testing.TB, n int, tune func(*Config, *engine.Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, faults: NewFaults(), tune: tune}
	for i := range n {
		c.nodes = append(c.nodes, &testNode{name: fmt.Sprintf("node-%d", i), dir: t.TempDir()})
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	for i := range n {
		c.start(i)
	}
	c.waitAlive(5*time.Second, c.names()...)
	return c
}

func (c *testCluster) names() []string {
	var out []string
	for _, tn := range c.nodes {
		out = append(out, tn.name)
	}
	return out
}

// start opens node i's engine on its directory and starts its node,
// joining the first other running node, and serves its sync routes.
func (c *testCluster) start(i int) {
	c.t.Helper()
	tn := c.nodes[i]
	ecfg := engine.Config{Dir: filepath.Join(tn.dir, "engine")}
	cfg := testConfig(tn.name)
	cfg.Dir = filepath.Join(tn.dir, "cluster")
	cfg.Faults = c.faults
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.HTTPAddr = ln.Addr().String()
	for _, o := range c.nodes {
		if o != tn && o.node != nil && !tn.noJoin {
			cfg.Join = []string{o.node.GossipAddr()}
			break
		}
	}
	if c.tune != nil {
		c.tune(&cfg, &ecfg)
	}
	eng, err := engine.Open(ecfg)
	if err != nil {
		ln.Close()
		c.t.Fatalf("open engine of %s: %v", tn.name, err)
	}
	var store Store = eng
	if c.wrap != nil {
		store = c.wrap(tn.name, eng)
	}
	node, err := New(cfg, store)
	if err != nil {
		ln.Close()
		_ = eng.Close()
		c.t.Fatalf("start %s: %v", tn.name, err)
	}
	tn.srv = &http.Server{Handler: node.Handler()}
	go tn.srv.Serve(ln)
	tn.eng, tn.node = eng, node
}

// wipe removes node i's data (it must be stopped): a replaced disk.
func (c *testCluster) wipe(i int) {
	c.t.Helper()
	if err := os.RemoveAll(c.nodes[i].dir); err != nil {
		c.t.Fatal(err)
	}
	if err := os.MkdirAll(c.nodes[i].dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
}

// waitReady waits until node i reports ready.
func (c *testCluster) waitReady(d time.Duration, i int) string {
	c.t.Helper()
	var reason string
	waitFor(c.t, d, c.nodes[i].name+" ready", func() bool {
		var ok bool
		ok, reason = c.nodes[i].node.Readiness()
		return ok
	})
	return reason
}

// stop closes node i and its engine.
func (c *testCluster) stop(i int) {
	c.t.Helper()
	tn := c.nodes[i]
	if tn.node == nil {
		return
	}
	if err := tn.node.Close(); err != nil {
		c.t.Errorf("close %s: %v", tn.name, err)
	}
	tn.srv.Close()
	if err := tn.eng.Close(); err != nil {
		c.t.Errorf("close engine of %s: %v", tn.name, err)
	}
	tn.node, tn.eng, tn.srv = nil, nil, nil
}

// running lists the running nodes.
func (c *testCluster) running() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.node != nil {
			out = append(out, tn)
		}
	}
	return out
}

// waitAlive waits until every running node sees each of names alive.
func (c *testCluster) waitAlive(d time.Duration, names ...string) {
	c.t.Helper()
	waitFor(c.t, d, fmt.Sprintf("%v alive everywhere", names), func() bool {
		for _, tn := range c.running() {
			states := map[string]string{}
			for _, m := range tn.node.Members() {
				states[m.Name] = m.State
			}
			for _, name := range names {
				if states[name] != StateAlive {
					return false
				}
			}
		}
		return true
	})
}

// waitState waits until each of the given nodes (every running node when
// none is given) sees the node called name in state.
func (c *testCluster) waitState(d time.Duration, name, state string, at ...*Node) {
	c.t.Helper()
	c.waitStateIn(d, name, []string{state}, at)
}

// waitGone waits until every running node lists name as left or dead. A
// node that leaves is usually recorded as left; on a loaded machine its
// leave message can overtake the metadata announcing the leave, and a peer
// records it as dead instead, which these tests do not tell apart.
func (c *testCluster) waitGone(d time.Duration, name string) {
	c.t.Helper()
	c.waitStateIn(d, name, []string{StateLeft, StateDead}, nil)
}

// waitStateIn waits until each of the nodes at (every running node when
// none) sees the node called name in one of states.
func (c *testCluster) waitStateIn(d time.Duration, name string, states []string, at []*Node) {
	c.t.Helper()
	if len(at) == 0 {
		for _, tn := range c.running() {
			at = append(at, tn.node)
		}
	}
	waitFor(c.t, d, fmt.Sprintf("%s %s", name, strings.Join(states, " or ")), func() bool {
		for _, n := range at {
			ms := n.Members()
			i := slices.IndexFunc(ms, func(m Member) bool { return m.Name == name })
			if i < 0 || !slices.Contains(states, ms[i].State) {
				return false
			}
		}
		return true
	})
}

// waitValue waits until every running node holds key with value want
// (absent when want is nil).
func (c *testCluster) waitValue(d time.Duration, key string, want []byte) {
	c.t.Helper()
	waitFor(c.t, d, fmt.Sprintf("%q = %q everywhere", key, want), func() bool {
		for _, tn := range c.running() {
			e, ok := tn.node.Get(key)
			if want == nil && ok || want != nil && (!ok || string(e.Value) != string(want)) {
				return false
			}
		}
		return true
	})
}

// waitConverged waits until every running node has the same digests.
func (c *testCluster) waitConverged(d time.Duration) {
	c.t.Helper()
	waitFor(c.t, d, "identical digests on every node", func() bool {
		nodes := c.running()
		first := nodes[0].eng.LeafDigests()
		for _, tn := range nodes[1:] {
			if !slices.Equal(first, tn.eng.LeafDigests()) {
				return false
			}
		}
		return true
	})
}

func put(t testing.TB, n *Node, key, value string) engine.Entry {
	t.Helper()
	e, err := n.Put(context.Background(), Write{Key: key, Value: []byte(value), ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("put %q on %s: %v", key, n.Name(), err)
	}
	return e
}

func del(t testing.TB, n *Node, key string) engine.Entry {
	t.Helper()
	e, err := n.Delete(context.Background(), key, false)
	if err != nil {
		t.Fatalf("delete %q on %s: %v", key, n.Name(), err)
	}
	return e
}

func TestWriteReachesEveryNode(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	for i, tn := range c.nodes {
		put(t, tn.node, fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i))
	}
	for i := range c.nodes {
		c.waitValue(5*time.Second, fmt.Sprintf("key-%d", i), []byte(fmt.Sprintf("value-%d", i)))
	}
	e, _ := c.nodes[2].node.Get("key-0")
	if e.ContentType != "text/plain" {
		t.Fatalf("content type on a peer = %q, want text/plain", e.ContentType)
	}
	// A loaded machine can delay probes enough to show a peer suspect for
	// a moment; the listing must settle on every member alive.
	var ms []Member
	waitFor(t, 10*time.Second, "node-0 to list node-2 alive with its HTTP address", func() bool {
		ms = c.nodes[0].node.Members()
		return len(ms) == 3 && ms[2].Name == "node-2" && ms[2].HTTPAddr == c.nodes[2].node.cfg.HTTPAddr && ms[2].State == StateAlive
	})
	del(t, c.nodes[1].node, "key-0")
	c.waitValue(5*time.Second, "key-0", nil)
	c.waitConverged(5 * time.Second)
}

func TestConcurrentWritesConverge(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	var wg sync.WaitGroup
	for i, tn := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				w := Write{Key: "contended", Value: []byte(fmt.Sprintf("node-%d-%d", i, j))}
				if _, err := tn.node.Put(context.Background(), w); err != nil {
					t.Errorf("put on %s: %v", tn.name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.waitConverged(10 * time.Second)
	first, ok := c.nodes[0].node.Get("contended")
	if !ok {
		t.Fatal("contended key missing")
	}
	for _, tn := range c.nodes[1:] {
		e, _ := tn.node.Get("contended")
		if string(e.Value) != string(first.Value) || e.Version != first.Version {
			t.Fatalf("%s holds %q@%v, node-0 holds %q@%v", tn.name, e.Value, e.Version, first.Value, first.Version)
		}
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	put(t, c.nodes[0].node, "old", "v1")
	put(t, c.nodes[0].node, "doomed", "v1")
	c.waitValue(5*time.Second, "doomed", []byte("v1"))

	c.stop(2)
	c.waitGone(5*time.Second, "node-2")
	for i := range 100 {
		put(t, c.nodes[i%2].node, fmt.Sprintf("while-down-%d", i), "x")
	}
	put(t, c.nodes[1].node, "old", "v2")
	del(t, c.nodes[0].node, "doomed")

	c.start(2)
	c.waitAlive(5*time.Second, c.names()...)
	c.waitConverged(15 * time.Second)
	n2 := c.nodes[2].node
	for i := range 100 {
		if _, ok := n2.Get(fmt.Sprintf("while-down-%d", i)); !ok {
			t.Fatalf("restarted node misses while-down-%d", i)
		}
	}
	if e, _ := n2.Get("old"); string(e.Value) != "v2" {
		t.Fatalf("restarted node holds old = %q, want v2", e.Value)
	}
	if _, ok := n2.Get("doomed"); ok {
		t.Fatal("restarted node still holds a key deleted while it was down")
	}
}

// TestSuspectWhileOthersReachIt: a member this node's probes cannot reach
// while the other members can is shown as suspect here, and stays so,
// since memberlist keeps it alive on the others' word; it is alive again
// once the link heals. (Across a real partition memberlist may declare a
// member dead before its suspicion shows, which is why this cuts one link.)
func TestSuspectWhileOthersReachIt(t *testing.T) {
	c := newTestCluster(t, 4, nil)
	n0, n2 := c.nodes[0], c.nodes[2]
	c.faults.Partition([]string{n0.name}, []string{n2.name})
	c.waitState(10*time.Second, n2.name, StateSuspect, n0.node)
	c.waitState(10*time.Second, n2.name, StateAlive, c.nodes[1].node, c.nodes[3].node)
	c.faults.Heal()
	c.waitState(10*time.Second, n2.name, StateAlive, n0.node)
}

func TestPartitionHeals(t *testing.T) {
	c := newTestCluster(t, 4, nil)
	a, b := c.nodes[:2], c.nodes[2:]
	for _, k := range []string{"p", "q", "r"} {
		put(t, a[0].node, k, "before")
	}
	c.waitValue(5*time.Second, "r", []byte("before"))

	c.faults.Partition([]string{a[0].name, a[1].name}, []string{b[0].name, b[1].name})
	c.waitState(10*time.Second, b[0].name, StateDead, a[0].node)
	c.waitState(10*time.Second, a[1].name, StateDead, b[1].node)
	latest := map[string]engine.Entry{}
	record := func(e engine.Entry) {
		if old, ok := latest[e.Key]; !ok || e.Version.Compare(old.Version) > 0 {
			latest[e.Key] = e
		}
	}
	record(put(t, a[0].node, "r", "side-a"))
	record(del(t, a[1].node, "p"))
	record(put(t, a[0].node, "q", "side-a"))
	record(put(t, a[1].node, "only-a", "a"))
	record(put(t, b[0].node, "r", "side-b"))
	record(del(t, b[1].node, "q"))
	record(put(t, b[1].node, "only-b", "b"))
	for i := range 50 {
		record(put(t, b[i%2].node, fmt.Sprintf("bulk-b-%d", i), "b"))
	}
	// Each side must not have seen the other's writes.
	if e, _ := a[0].node.Get("r"); string(e.Value) != "side-a" {
		t.Fatalf("write crossed the partition: r = %q on side a", e.Value)
	}
	if _, ok := b[0].node.Get("only-a"); ok {
		t.Fatal("write crossed the partition: only-a on side b")
	}

	c.faults.Heal()
	c.waitAlive(10*time.Second, c.names()...)
	c.waitConverged(15 * time.Second)
	for key, e := range latest {
		if e.Deleted {
			c.waitValue(time.Second, key, nil)
		} else {
			c.waitValue(time.Second, key, e.Value)
		}
	}
}

// TestWriteBufferIsFreeOnReturn: a caller (the Redis protocol's reader)
// may reuse the buffer of a write's value as soon as Put or PutBatch
// returns: what peers receive, and what the call returned, are the
// store's copy.
func TestWriteBufferIsFreeOnReturn(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	a := c.nodes[0].node
	want := func(i int) []byte { return []byte(fmt.Sprintf("value-%04d", i)) }
	buf := make([]byte, 10)
	scribble := func(b []byte) {
		for j := range b {
			b[j] = '#'
		}
	}
	const singles, batches, perBatch = 100, 20, 10
	for i := range singles {
		copy(buf, want(i))
		e, err := a.Put(context.Background(), Write{Key: fmt.Sprint("s", i), Value: buf})
		if err != nil {
			t.Fatal(err)
		}
		scribble(buf)
		if !bytes.Equal(e.Value, want(i)) {
			t.Fatalf("Put returned %q after its buffer was reused, want %q", e.Value, want(i))
		}
	}
	big := make([]byte, 10*perBatch)
	for b := range batches {
		ws := make([]Write, perBatch)
		for j := range ws {
			i := b*perBatch + j
			v := big[j*10 : j*10+10]
			copy(v, want(i))
			ws[j] = Write{Key: fmt.Sprint("b", i), Value: v}
		}
		ents, errs := a.PutBatch(context.Background(), ws)
		scribble(big)
		for j, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			if i := b*perBatch + j; !bytes.Equal(ents[j].Value, want(i)) {
				t.Fatalf("PutBatch returned %q after its buffer was reused, want %q", ents[j].Value, want(i))
			}
		}
	}
	for i := range singles {
		c.waitValue(5*time.Second, fmt.Sprint("s", i), want(i))
	}
	for i := range batches * perBatch {
		c.waitValue(5*time.Second, fmt.Sprint("b", i), want(i))
	}
}

// TestPutBatch: a batch's writes take effect as single writes do, each
// above its key's version, reach the peers, and a batch that names a key
// twice or carries a precondition changes nothing.
func TestPutBatch(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	a := c.nodes[0].node
	old := put(t, a, "b1", "old")
	ws := []Write{
		{Key: "b1", Value: []byte("new"), ContentType: "text/plain"},
		{Key: "b2", Value: []byte("two"), ContentType: "text/plain"},
		{Key: "b3", Delete: true},
	}
	ents, errs := a.PutBatch(context.Background(), ws)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d of the batch: %v", i, err)
		}
	}
	if ents[0].Version.Compare(old.Version) <= 0 {
		t.Fatalf("b1 stamped %v, not above its old %v", ents[0].Version, old.Version)
	}
	c.waitValue(5*time.Second, "b1", []byte("new"))
	c.waitValue(5*time.Second, "b2", []byte("two"))
	for _, bad := range [][]Write{
		{{Key: "b4", Value: []byte("x")}, {Key: "b4", Value: []byte("y")}},
		{{Key: "b5", Value: []byte("x")}, {Key: "b6", Value: []byte("y"), If: Precondition{Absent: true}}},
	} {
		_, errs := a.PutBatch(context.Background(), bad)
		if errs[0] == nil || errs[1] == nil {
			t.Fatalf("batch %+v: errors %v, want both refused", bad, errs)
		}
		for _, w := range bad {
			if _, ok := a.Get(w.Key); ok {
				t.Fatalf("refused batch wrote %q", w.Key)
			}
		}
	}
}
