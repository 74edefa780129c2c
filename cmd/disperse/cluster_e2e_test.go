package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of the cluster: three real nodes on loopback, on the
// default intervals (see testCluster), restarted with SIGTERM or SIGKILL,
// with their data or on an empty directory.

// readyWithin is how soon a restarted node must answer /readyz 200, counted
// from its start: API.md promises catch-up within about a second, and the
// node's own join never waits for a periodic timer.
const readyWithin = 3 * time.Second

// catchUpOps are the writes of restartCatchesUp, under round/. Before the
// node goes away, 200 keys (pre/...) are written; while it is away 1,000 new
// keys are written, the first 100 pre keys deleted and the other 100
// overwritten.
func catchUpOps(round string) (before, while []op) {
	for k := range 200 {
		key := fmt.Sprintf("%s/pre/%03d", round, k)
		before = append(before, op{key: key, value: "before " + key})
	}
	for k := range 1000 {
		key := fmt.Sprintf("%s/new/%04d", round, k)
		while = append(while, op{key: key, value: "while away " + key})
	}
	for k := range 200 {
		key := fmt.Sprintf("%s/pre/%03d", round, k)
		if k < 100 {
			while = append(while, op{key: key, del: true})
		} else {
			while = append(while, op{key: key, value: "overwritten " + key})
		}
	}
	return before, while
}

// restartCatchesUp is the test of the three tests below: node-c goes away
// with sig (its data directory wiped if wipe) while the others take writes,
// deletes and overwrites; when it comes back, its first 200 on /readyz must
// come within readyWithin of its start, and at that moment it must serve
// every one of those changes.
func restartCatchesUp(t *testing.T, sig syscall.Signal, wipe bool) {
	c := newCluster(t, 3)
	const away = 2
	m := newModel("catchup/")
	before, while := catchUpOps("catchup")
	c.apply(m, []int{0, 1}, before)
	c.waitConverged(m, 10*time.Second)

	c.stop(away, sig)
	if wipe {
		c.wipe(away)
	}
	c.apply(m, []int{0, 1}, while)
	// The node that comes back can only be asked to match what the live
	// nodes agree on.
	c.waitConverged(m, 10*time.Second, 0, 1)

	join := c.nodes[away].join
	c.start(away, join...)
	took, body := c.waitReady(away)
	err := c.check(away, m)
	if err != nil {
		t.Errorf("%s at its first 200 on /readyz (%s, %v after its start) does not serve what it missed: %v",
			c.nodes[away].name, strings.TrimSpace(body), took.Round(time.Millisecond), err)
	}
	if took > readyWithin {
		t.Errorf("%s answered /readyz 200 %v after its start, want within %v; body %s",
			c.nodes[away].name, took.Round(time.Millisecond), readyWithin, strings.TrimSpace(body))
	}
	if err != nil {
		// Whether it catches up at all, later, tells a slow sync from none.
		eventually(t, 10*time.Second, c.nodes[away].name+" catches up at all", func() error { return c.check(away, m) })
	}
	c.waitMembersAlive(formTimeout)
}

// TestClusterRestartCatchesUp: a node stopped with SIGTERM and started again
// on its data directory is ready only once it serves the 1,200 changes made
// while it was away, and within readyWithin.
func TestClusterRestartCatchesUp(t *testing.T) {
	restartCatchesUp(t, syscall.SIGTERM, false)
}

// TestClusterKillCatchesUp: the same after SIGKILL.
func TestClusterKillCatchesUp(t *testing.T) {
	restartCatchesUp(t, syscall.SIGKILL, false)
}

// TestClusterReplacedDiskCatchesUp: the same after SIGKILL and a new, empty
// data directory under the same name and ports (a replaced disk): the node
// takes everything, the writes from before it went away too.
func TestClusterReplacedDiskCatchesUp(t *testing.T) {
	restartCatchesUp(t, syscall.SIGKILL, true)
}

// TestClusterRestartsKeepMembership restarts the node the others joined
// through, with and without --join, and the others: after each restart
// every node lists all three alive and a write on each node reaches both
// others within a few seconds.
func TestClusterRestartsKeepMembership(t *testing.T) {
	c := newCluster(t, 3)
	c.checkReplication("start", 5*time.Second)
	steps := []struct {
		node int
		sig  syscall.Signal
		join []int
		what string
	}{
		{0, syscall.SIGTERM, nil, "the first node, SIGTERM, started without --join"},
		{0, syscall.SIGKILL, []int{1}, "the first node, SIGKILL, started with --join to node-b"},
		{1, syscall.SIGTERM, []int{0}, "node-b, SIGTERM, started with --join to the first node"},
		{2, syscall.SIGKILL, nil, "node-c, SIGKILL, started without --join"},
		{0, syscall.SIGKILL, nil, "the first node again, SIGKILL, started without --join"},
		{1, syscall.SIGKILL, []int{2}, "node-b, SIGKILL, started with --join to node-c"},
	}
	for k, s := range steps {
		t.Logf("restart %d: %s", k+1, s.what)
		c.restart(s.node, s.sig, false, s.join...)
		eventually(t, formTimeout, fmt.Sprintf("after restart %d (%s): every member alive on every node", k+1, s.what), c.checkMembersAlive)
		c.checkReplication(fmt.Sprintf("restart-%d", k+1), 5*time.Second)
	}
}

// TestClusterExpiryNeverUndone: a value overwritten by one with a TTL that
// then expired never comes back, on any node, while each node in turn is
// restarted with SIGKILL (recovery from the log alone) or SIGTERM (from a
// snapshot), neither during its recovery nor after.
func TestClusterExpiryNeverUndone(t *testing.T) {
	c := newCluster(t, 3)
	const key = "expiry/k"
	c.put(0, key, "old", "")
	eventually(t, 5*time.Second, "old reaches every node", func() error {
		return c.everyNode(func(i int, code int, body string) bool { return code == http.StatusOK && body == "old" }, key)
	})
	c.put(1, key, "new", "ttl=2s")
	eventually(t, 10*time.Second, "the new value expires on every node", func() error {
		return c.everyNode(func(i int, code int, body string) bool { return code == http.StatusNotFound }, key)
	})

	w := c.watchNever(key, "old")
	defer w.stop()
	steps := []struct {
		node int
		sig  syscall.Signal
	}{{0, syscall.SIGKILL}, {1, syscall.SIGTERM}, {2, syscall.SIGKILL}, {0, syscall.SIGTERM}, {1, syscall.SIGKILL}, {2, syscall.SIGTERM}}
	for k, s := range steps {
		c.restart(s.node, s.sig, false, c.nodes[s.node].join...)
		// Keep watching a while after the node is ready: its first syncs
		// with the others happen now.
		w.observe(t, 2*time.Second, fmt.Sprintf("restart %d, %s with %v", k+1, c.nodes[s.node].name, s.sig))
	}
	w.stop()
	for _, nd := range c.nodes {
		if w.polled[nd.name] == 0 {
			t.Errorf("%s never answered the watcher: the test saw nothing", nd.name)
		}
	}
	if err := c.everyNode(func(i int, code int, body string) bool { return code == http.StatusNotFound }, key); err != nil {
		t.Errorf("after every restart: %v", err)
	}
}

// everyNode GETs key on every node and returns which answers fail ok.
func (c *testCluster) everyNode(ok func(i, code int, body string) bool, key string) error {
	var errs failures
	for i, nd := range c.nodes {
		code, body, err := c.get(i, key)
		if err != nil || !ok(i, code, body) {
			errs = append(errs, fmt.Sprintf("%s: GET %s: %d %q %v", nd.name, key, code, body, err))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// watcher polls key on every node, running or starting, and records any
// answer 200 with a forbidden value.
type watcher struct {
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	seen   []string       // the forbidden answers
	polled map[string]int // answers (any status) per node
	once   sync.Once
}

// watchNever starts polling key on every node until stop, recording every
// 200 whose body is bad.
func (c *testCluster) watchNever(key, bad string) *watcher {
	w := &watcher{done: make(chan struct{}), polled: map[string]int{}}
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, nd := range c.nodes {
		w.wg.Go(func() {
			for {
				select {
				case <-w.done:
					return
				default:
				}
				code, body, err := httpGet(hc, nd.url+"/cache/"+key)
				w.mu.Lock()
				if err == nil {
					w.polled[nd.name]++
				}
				if err == nil && code == http.StatusOK && body == bad {
					w.seen = append(w.seen, fmt.Sprintf("%s served %s=%q at %s", nd.name, key, body, time.Now().Format("15:04:05.000")))
				}
				w.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	return w
}

// observe keeps watching for d and fails the test, naming when, if a bad
// answer was seen so far.
func (w *watcher) observe(t *testing.T, d time.Duration, when string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		seen := w.seen
		w.mu.Unlock()
		if len(seen) > 0 {
			t.Fatalf("%s: a value that must stay gone was served: %v", when, failures(seen))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *watcher) stop() {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
}

// TestClusterDuplicateNameExits: a fourth process started with the name of
// a live member (other ports, another data directory, joining the cluster)
// exits by itself with status 1 and one line naming the clash; the three
// members go on as they were.
func TestClusterDuplicateNameExits(t *testing.T) {
	c := newCluster(t, 3)
	const taken = 1
	name := c.nodes[taken].name
	dup := startNode(t, t.TempDir(), "--name", name, "--join", c.nodes[0].gossipAddr())
	select {
	case <-dup.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("a second %s still runs 15s after its start; want it to exit with status 1 and a line saying the name is taken\n%s", name, tail(dup.stderr.String(), 10))
	}
	if code := exitCode(dup); code != exitFailure {
		t.Errorf("the second %s exited with status %d, want %d", name, code, exitFailure)
	}
	plain := plainLines(dup.stderr.String())
	if len(plain) != 1 {
		t.Errorf("the second %s wrote %d lines besides its log, want one naming the clash: %q", name, len(plain), plain)
	} else if l := plain[0]; !strings.HasPrefix(l, "disperse serve: ") || !strings.Contains(l, name) || !strings.Contains(strings.ToLower(l), "name") {
		t.Errorf("the second %s's last words %q: want one line saying its name %s is taken", name, l, name)
	}

	for _, nd := range c.nodes {
		if nd.p.exited() {
			t.Fatalf("%s exited after a second %s tried to join: %v\n%s", nd.name, name, nd.p.err, tail(nd.p.stderr.String(), 10))
		}
	}
	eventually(t, formTimeout, "after the clash, exactly the three members alive on every node", c.checkMembersAlive)
	c.checkReplication("after-clash", 5*time.Second)
}

// plainLines are the lines of a node's stderr that are not JSON log lines.
func plainLines(stderr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if l := sc.Text(); strings.TrimSpace(l) != "" && json.Unmarshal([]byte(l), &m) != nil {
			out = append(out, l)
		}
	}
	return out
}

// tombstoneTTL is TestClusterTombstones's --tombstone-ttl: short, so that
// a node can be away longer than it within the test.
const tombstoneTTL = 3 * time.Second

// TestClusterTombstones: a node that was away longer than the tombstone TTL
// does not bring back keys deleted while it was away, after the others
// have collected their tombstones.
func TestClusterTombstones(t *testing.T) {
	c := newCluster(t, 3, "--tombstone-ttl", tombstoneTTL.String())
	const away = 2
	m := newModel("tomb/")
	var ops []op
	for k := range 40 {
		key := fmt.Sprintf("tomb/first/%02d", k)
		ops = append(ops, op{key: key, value: "v " + key})
	}
	c.apply(m, []int{0, 1}, ops)
	c.waitConverged(m, 10*time.Second)
	for _, i := range []int{0, 1} {
		if _, ok := c.metric(i, tombstonesMetric); !ok {
			t.Fatalf("%s has no %s in /metrics", c.nodes[i].name, tombstonesMetric)
		}
	}

	c.stop(away, syscall.SIGTERM)
	stopped := time.Now()
	ops = nil
	for k := range 20 { // delete half of them
		ops = append(ops, op{key: fmt.Sprintf("tomb/first/%02d", k), del: true})
	}
	c.apply(m, []int{0, 1}, ops)
	c.waitConverged(m, 10*time.Second, 0, 1)
	for _, i := range []int{0, 1} {
		eventually(t, tombstoneTTL+20*time.Second, c.nodes[i].name+" collects its tombstones", func() error {
			if v, _ := c.metric(i, tombstonesMetric); v != 0 {
				return fmt.Errorf("%s=%v", tombstonesMetric, v)
			}
			return nil
		})
	}
	if time.Since(stopped) <= tombstoneTTL {
		t.Fatalf("tombstones collected %v after the node left, before the %v TTL passed", time.Since(stopped), tombstoneTTL)
	}

	// node-c comes back, holding the deleted keys, after more than the TTL.
	// A and B must never serve them again; C not from its readiness on.
	w := c.watchDeleted(m, []int{0, 1})
	c.start(away, c.nodes[away].join...)
	took, body := c.waitReady(away)
	if err := c.check(away, m); err != nil {
		t.Errorf("%s back after %v (TTL %v), at its first 200 on /readyz (%v after its start, %s): %v",
			c.nodes[away].name, time.Since(stopped).Round(time.Second), tombstoneTTL, took.Round(time.Millisecond), strings.TrimSpace(body), err)
	}
	w.watchToo(away)
	w.observe(t, 3*time.Second, c.nodes[away].name+" back after more than the tombstone TTL")
	w.stop()
	for i := range c.nodes {
		if err := c.check(i, m); err != nil {
			t.Errorf("after %s came back: %v", c.nodes[away].name, err)
		}
	}
}

// TestClusterWipedDisksKeepEverything: each node in turn gets a new, empty
// data directory, with writes and deletes before it stops and while it is
// away; at the end every node serves every key written and not deleted,
// and none serves a deleted one. The tombstone TTL is as short as in
// TestClusterTombstones, so deletes are forgotten while this runs.
func TestClusterWipedDisksKeepEverything(t *testing.T) {
	c := newCluster(t, 3, "--tombstone-ttl", tombstoneTTL.String())
	m := newModel("wipe/")
	for i := range c.nodes {
		others := []int{(i + 1) % 3, (i + 2) % 3}
		c.apply(m, others, wipeRoundOps(m, i, "before"))
		c.stop(i, syscall.SIGTERM)
		c.wipe(i)
		c.apply(m, others, wipeRoundOps(m, i, "while"))
		c.start(i, others[0])
		c.waitReady(i)
	}
	c.waitConverged(m, 5*time.Second)
	c.waitMembersAlive(formTimeout)
}

// tombstonesMetric is the engine's gauge of the tombstones it holds.
const tombstonesMetric = "disperse_tombstones"

// wipeRoundOps are 30 new keys and deletes of 5 live keys of m.
func wipeRoundOps(m *model, node int, phase string) []op {
	var ops []op
	for k := range 30 {
		key := fmt.Sprintf("%s%d-%s/%02d", m.prefix, node, phase, k)
		ops = append(ops, op{key: key, value: "v " + key})
	}
	live := slices.Sorted(maps.Keys(m.values))
	for _, key := range live[:min(5, len(live))] {
		ops = append(ops, op{key: key, del: true})
	}
	return ops
}

// deletedWatcher polls deleted keys on some nodes and records any 200.
type deletedWatcher struct {
	*watcher
	c    *testCluster
	keys []string
}

// watchDeleted polls every deleted key of m on the nodes given until stop.
func (c *testCluster) watchDeleted(m *model, nodes []int) *deletedWatcher {
	w := &deletedWatcher{watcher: &watcher{done: make(chan struct{}), polled: map[string]int{}}, c: c}
	for k := range m.gone {
		w.keys = append(w.keys, k)
	}
	for _, i := range nodes {
		w.watchToo(i)
	}
	return w
}

// watchToo starts polling on node i as well.
func (w *deletedWatcher) watchToo(i int) {
	nd := w.c.nodes[i]
	hc := &http.Client{Timeout: 2 * time.Second}
	w.wg.Go(func() {
		for {
			for _, key := range w.keys {
				select {
				case <-w.done:
					return
				default:
				}
				code, body, err := httpGet(hc, nd.url+"/cache/"+key)
				w.mu.Lock()
				if err == nil {
					w.polled[nd.name]++
				}
				if err == nil && code == http.StatusOK {
					w.seen = append(w.seen, fmt.Sprintf("%s served deleted %s=%q at %s", nd.name, key, body, time.Now().Format("15:04:05.000")))
				}
				w.mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
