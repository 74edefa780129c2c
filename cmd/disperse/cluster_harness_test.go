package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A testCluster is N real `disperse serve` processes on loopback, each with
// a fixed name, fixed ports and a data directory of its own, so that a node
// can be stopped and started again as the same member. Nodes run on every
// default except what the test passes as extra flags: the intervals of
// gossip, probing and anti-entropy are never shortened here, since a short
// one can hide a window of stale reads that users would see.
type testCluster struct {
	t     *testing.T
	nodes []*clusterNode
	extra []string     // flags every node gets
	hc    *http.Client // for requests to any node
}

// clusterNode is one member: what stays the same across its restarts, and
// its current process.
type clusterNode struct {
	name       string
	httpPort   int
	gossipPort int
	dataDir    string
	url        string // base URL of its HTTP API
	join       []int  // the nodes it joins through when started as usual
	p          *proc  // the current (or last) process
	started    time.Time
}

func (n *clusterNode) gossipAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.gossipPort) }

// Timeouts of the harness. None is a condition of the product (those are
// in the tests); they only bound how long a broken node can hold a test.
const (
	startTimeout = 30 * time.Second // a process starts and answers /readyz
	stopTimeout  = 30 * time.Second // a signalled process exits
	// formTimeout: every member lists every other alive. A node back from
	// a leave refutes its "left" by gossip over UDP; when those packets are
	// lost on a loaded machine, memberlist's push-pull (every 30 s) brings
	// the others round, so the bound covers one of those.
	formTimeout = 40 * time.Second
)

// newCluster starts n nodes named node-a, node-b, ...: the first without
// --join, the others joining through it. It returns once every node is
// ready and lists all n alive. extra flags go to every node.
func newCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	return newClusterTLS(t, n, nil, extra...)
}

// newClusterTLS is newCluster for nodes that serve TLS (extra names their
// certificate): requests go to https:// URLs and trust roots.
func newClusterTLS(t *testing.T, n int, roots *x509.CertPool, extra ...string) *testCluster {
	t.Helper()
	needBinary(t)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	scheme := "http"
	if roots != nil {
		tr.TLSClientConfig, scheme = &tls.Config{RootCAs: roots}, "https"
	}
	c := &testCluster{
		t:     t,
		extra: extra,
		hc:    &http.Client{Timeout: 10 * time.Second, Transport: tr},
	}
	t.Cleanup(c.hc.CloseIdleConnections)
	base := t.TempDir()
	for i := range n {
		nd := &clusterNode{
			name:       "node-" + string(rune('a'+i)),
			httpPort:   freePort(t),
			gossipPort: freePort(t),
		}
		nd.dataDir = filepath.Join(base, nd.name)
		nd.url = fmt.Sprintf("%s://127.0.0.1:%d", scheme, nd.httpPort)
		if i > 0 {
			nd.join = []int{0}
		}
		c.nodes = append(c.nodes, nd)
	}
	c.start(0)
	c.waitReady(0)
	for i := 1; i < n; i++ {
		c.start(i, c.nodes[i].join...)
	}
	for i := 1; i < n; i++ {
		c.waitReady(i)
	}
	c.waitMembersAlive(formTimeout)
	return c
}

// start starts node i on its name, ports and data directory, joining the
// nodes join (none: no --join, the node finds its peers from what its data
// directory kept). It does not wait for the node to be ready.
func (c *testCluster) start(i int, join ...int) {
	c.t.Helper()
	nd := c.nodes[i]
	if nd.p != nil && !nd.p.exited() {
		c.t.Fatalf("%s: started while its last process still runs", nd.name)
	}
	args := []string{"--name", nd.name,
		"--http-port", fmt.Sprint(nd.httpPort), "--gossip-port", fmt.Sprint(nd.gossipPort)}
	if len(join) > 0 {
		var addrs []string
		for _, j := range join {
			addrs = append(addrs, c.nodes[j].gossipAddr())
		}
		args = append(args, "--join", strings.Join(addrs, ","))
	}
	args = append(args, c.extra...)
	// startNode picks ports of its own; the flags here come later on the
	// command line, and the last of a repeated flag wins.
	nd.started = time.Now()
	nd.p = startNode(c.t, nd.dataDir, args...)
	nd.p.url = nd.url
}

// stop sends sig (SIGTERM or SIGKILL) to node i and waits for it to exit.
// After SIGTERM the exit status must be 0.
func (c *testCluster) stop(i int, sig syscall.Signal) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.p.signal(c.t, sig)
	select {
	case <-nd.p.done:
	case <-time.After(stopTimeout):
		c.t.Fatalf("%s: still running %v after %v", nd.name, stopTimeout, sig)
	}
	if code := exitCode(nd.p); sig == syscall.SIGTERM && code != 0 {
		c.t.Errorf("%s: exit status %d after SIGTERM, want 0; last lines:\n%s", nd.name, code, tail(nd.p.stderr.String(), 5))
	}
}

// wipe empties node i's data directory (the node must be stopped): a
// replaced disk.
func (c *testCluster) wipe(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	if !nd.p.exited() {
		c.t.Fatalf("%s: wiping the data directory of a running node", nd.name)
	}
	if err := os.RemoveAll(nd.dataDir); err != nil {
		c.t.Fatal(err)
	}
	if err := os.MkdirAll(nd.dataDir, 0o755); err != nil {
		c.t.Fatal(err)
	}
}

// restart stops node i with sig, wipes its data directory if wipe, starts
// it joining join (none: without --join) and waits until it is ready. It
// returns how long the node took from its start to its first 200 on /readyz
// and that answer's body.
func (c *testCluster) restart(i int, sig syscall.Signal, wipe bool, join ...int) (time.Duration, string) {
	c.t.Helper()
	c.stop(i, sig)
	if wipe {
		c.wipe(i)
	}
	c.start(i, join...)
	return c.waitReady(i)
}

// waitReady polls node i's /readyz until the first 200 and returns how long
// after its start that came, with the body of that answer. It fails the
// test if the process exits first.
func (c *testCluster) waitReady(i int) (time.Duration, string) {
	c.t.Helper()
	nd := c.nodes[i]
	deadline := nd.started.Add(startTimeout)
	last := "no answer"
	for {
		if nd.p.exited() {
			c.t.Fatalf("%s exited before it was ready (%v); last lines:\n%s", nd.name, nd.p.err, tail(nd.p.stderr.String(), 10))
		}
		code, body, err := httpGet(c.hc, nd.url+"/readyz")
		switch {
		case err == nil && code == http.StatusOK:
			return time.Since(nd.started), body
		case err == nil:
			last = fmt.Sprintf("%d %s", code, body)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: /readyz not 200 %v after its start; last answer: %s", nd.name, startTimeout, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitCode is the exit status of an exited process; -1 when a signal
// ended it.
func exitCode(p *proc) int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// eventually calls check until it returns nil or d passes, then fails the
// test with what and check's last error.
func eventually(t testing.TB, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeMember is one row of GET /cluster/members.
type nodeMember struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	GossipPort int    `json:"gossip_port"`
	HTTPAddr   string `json:"http_addr"`
	State      string `json:"state"`
}

// members reads GET /cluster/members from node i.
func (c *testCluster) members(i int) ([]nodeMember, error) {
	code, body, err := httpGet(c.hc, c.nodes[i].url+"/cluster/members")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /cluster/members: %d %s", code, body)
	}
	var ms []nodeMember
	if err := json.Unmarshal([]byte(body), &ms); err != nil {
		return nil, fmt.Errorf("GET /cluster/members: %v: %s", err, body)
	}
	return ms, nil
}

// checkMembersAlive: every node lists exactly the cluster's nodes, each
// alive at its own gossip and HTTP address.
func (c *testCluster) checkMembersAlive() error {
	var errs []string
	for i, nd := range c.nodes {
		ms, err := c.members(i)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", nd.name, err))
			continue
		}
		var got []string
		ok := len(ms) == len(c.nodes)
		for _, m := range ms {
			got = append(got, m.Name+" "+m.State)
			j := slices.IndexFunc(c.nodes, func(n *clusterNode) bool { return n.name == m.Name })
			if j < 0 || m.State != "alive" || m.GossipPort != c.nodes[j].gossipPort ||
				m.HTTPAddr != strings.TrimPrefix(c.nodes[j].url, "http://") { // https:// stays
				ok = false
			}
		}
		if !ok {
			sort.Strings(got)
			errs = append(errs, fmt.Sprintf("%s lists %v (%+v)", nd.name, got, ms))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("want every node to list %s, all alive at their own addresses:\n\t%s",
			strings.Join(c.names(), ", "), strings.Join(errs, "\n\t"))
	}
	return nil
}

func (c *testCluster) waitMembersAlive(d time.Duration) {
	c.t.Helper()
	eventually(c.t, d, "every member alive on every node", c.checkMembersAlive)
}

func (c *testCluster) names() []string {
	var names []string
	for _, nd := range c.nodes {
		names = append(names, nd.name)
	}
	return names
}

// checkReplication writes a new key on every node and waits up to d until
// each of them is served by every other node.
func (c *testCluster) checkReplication(round string, d time.Duration) {
	c.t.Helper()
	want := map[string]string{}
	for i, nd := range c.nodes {
		key := fmt.Sprintf("probe/%s/%s", round, nd.name)
		want[key] = fmt.Sprintf("written on %s in %s", nd.name, round)
		c.put(i, key, want[key], "")
	}
	eventually(c.t, d, "a write on each node served by every node ("+round+")", func() error {
		var errs []string
		for i, nd := range c.nodes {
			for key, v := range want {
				code, body, err := c.get(i, key)
				if err != nil || code != http.StatusOK || body != v {
					errs = append(errs, fmt.Sprintf("%s: GET %s: %d %q %v, want 200 %q", nd.name, key, code, body, err, v))
				}
			}
		}
		if len(errs) > 0 {
			return failures(errs)
		}
		return nil
	})
}

// failures is a list of differences as one error, the first few in full.
type failures []string

func (e failures) Error() string {
	const show = 10
	s := strings.Join(e[:min(len(e), show)], "\n\t")
	if len(e) > show {
		s += fmt.Sprintf("\n\t... and %d more", len(e)-show)
	}
	return fmt.Sprintf("%d wrong:\n\t%s", len(e), s)
}

// put writes key=value on node i (text/plain, the body is the value) with
// an optional query ("ttl=2s") and fails the test unless it is answered 200.
func (c *testCluster) put(i int, key, value, query string) {
	c.t.Helper()
	if err := c.tryPut(i, key, value, query); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) tryPut(i int, key, value, query string) error {
	u := c.nodes[i].url + "/cache/" + key
	if query != "" {
		u += "?" + query
	}
	code, err := httpPut(c.hc, u, value)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("%s: PUT %s: %d %v, want 200", c.nodes[i].name, key, code, err)
	}
	return nil
}

func (c *testCluster) tryDelete(i int, key string) error {
	code, err := httpDelete(c.hc, c.nodes[i].url+"/cache/"+key)
	if err != nil || code != http.StatusNoContent {
		return fmt.Errorf("%s: DELETE %s: %d %v, want 204", c.nodes[i].name, key, code, err)
	}
	return nil
}

// get reads key from node i: the status and the body.
func (c *testCluster) get(i int, key string) (int, string, error) {
	return httpGet(c.hc, c.nodes[i].url+"/cache/"+key)
}

// model is what the cluster should hold under a key prefix: key -> value,
// and deleted keys with deleted set.
type model struct {
	prefix string
	values map[string]string
	gone   map[string]bool
}

func newModel(prefix string) *model {
	return &model{prefix: prefix, values: map[string]string{}, gone: map[string]bool{}}
}

func (m *model) set(key, value string) { m.values[key] = value; delete(m.gone, key) }
func (m *model) del(key string)        { delete(m.values, key); m.gone[key] = true }

// op is one write of a batch: a put of value, or a delete.
type op struct {
	key, value string
	del        bool
}

// apply sends ops to the nodes on, op k to on[k%len(on)], from a few
// clients at once, and records them in m. Each key appears at most once
// in ops, so their order does not matter.
func (c *testCluster) apply(m *model, on []int, ops []op) {
	c.t.Helper()
	const clients = 8
	work := make(chan int)
	errs := make(chan error, len(ops))
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for k := range work {
				o, i := ops[k], on[k%len(on)]
				var err error
				if o.del {
					err = c.tryDelete(i, o.key)
				} else {
					err = c.tryPut(i, o.key, o.value, "")
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for k := range ops {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
	for _, o := range ops {
		if o.del {
			m.del(o.key)
		} else {
			m.set(o.key, o.value)
		}
	}
}

// check compares node i with m, now: a GET of every key (live or deleted)
// answers as m says, and the listing under m's prefix holds exactly the
// live keys. It returns the differences, counted by kind with examples.
func (c *testCluster) check(i int, m *model) error {
	nd := c.nodes[i]
	keys := slices.Sorted(maps.Keys(m.values))
	keys = append(keys, slices.Sorted(maps.Keys(m.gone))...)
	d := &diff{node: nd.name, live: len(m.values), deleted: len(m.gone)}
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range work {
				code, body, err := c.get(i, k)
				want, live := m.values[k]
				switch {
				case err != nil:
					d.add("failed", fmt.Sprintf("GET %s: %v", k, err))
				case live && code == http.StatusNotFound:
					d.add("missing", k)
				case live && (code != http.StatusOK || body != want):
					d.add("wrong", fmt.Sprintf("%s: %d %.60q, want %.60q", k, code, body, want))
				case !live && code != http.StatusNotFound:
					d.add("undeleted", fmt.Sprintf("%s: %d %.60q", k, code, body))
				}
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()

	listed, err := c.list(i, m.prefix)
	if err != nil {
		d.add("failed", err.Error())
	}
	for _, k := range listed {
		if _, ok := m.values[k]; !ok {
			d.add("listed", k)
		}
	}
	if err == nil && len(listed) != len(m.values) {
		d.add("count", fmt.Sprintf("%d keys listed under %q, want %d", len(listed), m.prefix, len(m.values)))
	}
	if len(d.kinds) == 0 {
		return nil
	}
	return d
}

// diff is what check found wrong on one node, by kind.
type diff struct {
	node          string
	live, deleted int
	mu            sync.Mutex
	kinds         map[string][]string
}

// diffKinds say what each kind of difference is, in the order shown.
var diffKinds = []struct{ kind, what string }{
	{"missing", "live keys answered 404"},
	{"wrong", "live keys with another value"},
	{"undeleted", "deleted keys still served"},
	{"listed", "deleted or unknown keys listed"},
	{"count", "listing"},
	{"failed", "requests failed"},
}

func (d *diff) add(kind, example string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kinds == nil {
		d.kinds = map[string][]string{}
	}
	d.kinds[kind] = append(d.kinds[kind], example)
}

func (d *diff) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, against %d live and %d deleted keys:", d.node, d.live, d.deleted)
	for _, k := range diffKinds {
		ex := slices.Sorted(slices.Values(d.kinds[k.kind]))
		if len(ex) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n\t%d %s, e.g. %s", len(ex), k.what, strings.Join(ex[:min(3, len(ex))], "; "))
	}
	return b.String()
}

// waitConverged waits up to d until every node given (all when none)
// matches m, and reports the differences of each node that does not.
func (c *testCluster) waitConverged(m *model, d time.Duration, nodes ...int) {
	c.t.Helper()
	if len(nodes) == 0 {
		for i := range c.nodes {
			nodes = append(nodes, i)
		}
	}
	var names []string
	for _, i := range nodes {
		names = append(names, c.nodes[i].name)
	}
	eventually(c.t, d, strings.Join(names, ", ")+" hold every write under "+m.prefix, func() error {
		var errs []string
		for _, i := range nodes {
			if err := c.check(i, m); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("\n%s", strings.Join(errs, "\n"))
		}
		return nil
	})
}

// list pages through GET /cache?prefix= on node i.
func (c *testCluster) list(i int, prefix string) ([]string, error) {
	var all []string
	after := ""
	for {
		resp, err := c.hc.Get(fmt.Sprintf("%s/cache?prefix=%s&limit=10000&after=%s", c.nodes[i].url, url.QueryEscape(prefix), url.QueryEscape(after)))
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /cache?prefix=%s: %d %s", prefix, resp.StatusCode, b)
		}
		var page struct {
			Keys []string `json:"keys"`
			Next string   `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("GET /cache?prefix=%s: %v: %s", prefix, err, b)
		}
		all = append(all, page.Keys...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

// metric reads one unlabelled metric of node i; ok is false when the node
// does not export it.
func (c *testCluster) metric(i int, name string) (float64, bool) {
	c.t.Helper()
	v, ok := scrape(c.t, c.nodes[i].p)[name]
	return v, ok
}
