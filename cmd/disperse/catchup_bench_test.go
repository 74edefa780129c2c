package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Catch-up of a restarted node, measured black-box on the built binary.

// Sizes of BenchmarkCatchUpBinary.
const (
	catchUpKeys    = 100_000 // written while the node is away
	catchUpValue   = 100     // bytes of each value
	catchUpClients = 64      // concurrent HTTP writers
	catchUpPrefix  = "catchup/"
	catchUpPage    = 10_000 // keys per listing page
)

// Bounds of the harness; none is a figure of the product.
const (
	catchUpStart = 30 * time.Second // a node answers /readyz, the cluster forms
	catchUpStop  = 30 * time.Second // a SIGTERMed node exits
	catchUpWait  = 2 * time.Minute  // the writes reach both live nodes, or the restarted one
)

// BenchmarkCatchUpBinary starts three `disperse serve` processes on
// loopback on every default (fsync always, 30 s anti-entropy interval, 10 s
// ready-sync timeout), stops node-c with SIGTERM, writes catchUpKeys
// 100-byte values over HTTP to node-a and node-b from 64 clients, waits
// until both list all of them, and starts node-c again on its data
// directory. It reports, counted from the moment the process is started:
//
//   - s-to-ready: the first 200 of node-c's /readyz (polled every 5 ms);
//   - s-to-serve-all: the end of the first listing of
//     /cache?prefix=catchup/&limit=10000 on node-c, begun at or after
//     s-to-ready, that holds every key written (keys are only added, so
//     a full listing means all of them were served by its end);
//   - keys-at-ready: the fraction of the keys that first listing held;
//   - cpu-s: the CPU time (user and system) the three processes spent from
//     node-c's start to the end of that listing, a figure that other load
//     on the machine changes much less than the times above;
//   - entries-received: what node-c received from its peers by then,
//     replication and sync (disperse_cluster_replication_entries_received_total);
//     catchUpKeys when every missed write crossed once;
//   - from the logs: recovery-s (node-c's engine open), sync-s and
//     entries-pulled of node-c's first completed sync, and syncs, the syncs
//     involving node-c, from either side, that moved entries before it
//     served everything.
//
// After the clock stops, a GET of every 100th key checks the values. Only
// the restart is timed. Skipped with -short, like the end-to-end tests.
//
// Two cases: "recent" starts node-c as soon as the writes are in, so its
// peers still keep them among their recent writes (the last 10 s) and send
// them on when it turns alive; "away" starts it catchUpAway later, when
// only the hash-tree sync can bring them.
func BenchmarkCatchUpBinary(b *testing.B) {
	needBinary(b)
	b.Run("recent", func(b *testing.B) { benchCatchUp(b, 0) })
	b.Run("away", func(b *testing.B) { benchCatchUp(b, catchUpAway) })
}

// catchUpAway is longer than the window in which nodes send their recent
// writes to a peer that turns alive (cluster.recentWindow, 10 s).
const catchUpAway = 12 * time.Second

func benchCatchUp(b *testing.B, away time.Duration) {
	b.StopTimer()
	var sum catchUpFigures
	for range b.N {
		f := catchUpBinaryOnce(b, away)
		sum.add(f)
		b.Logf("ready %.3fs, all %.3fs (%.0f%% at ready), cpu %.2fs, recovery %.3fs, first sync %.3fs pulling %.0f, %.0f syncs moving entries, %.0f entries received",
			f.ready, f.all, 100*f.atReady, f.cpu, f.recovery, f.sync, f.pulled, f.syncs, f.received)
	}
	n := float64(b.N)
	b.ReportMetric(sum.ready/n, "s-to-ready")
	b.ReportMetric(sum.all/n, "s-to-serve-all")
	b.ReportMetric(sum.atReady/n, "keys-at-ready")
	b.ReportMetric(sum.recovery/n, "recovery-s")
	b.ReportMetric(sum.sync/n, "sync-s")
	b.ReportMetric(sum.pulled/n, "entries-pulled")
	b.ReportMetric(sum.cpu/n, "cpu-s")
	b.ReportMetric(sum.received/n, "entries-received")
	b.ReportMetric(sum.syncs/n, "syncs")
	b.ReportMetric(0, "ns/op") // only the restart is timed; the figures above say it
}

// catchUpFigures is what one catch-up measured; seconds unless named.
type catchUpFigures struct {
	ready, all, atReady float64
	recovery, sync      float64
	pulled, syncs       float64
	received, cpu       float64
}

func (s *catchUpFigures) add(f catchUpFigures) {
	s.ready += f.ready
	s.all += f.all
	s.atReady += f.atReady
	s.recovery += f.recovery
	s.sync += f.sync
	s.pulled += f.pulled
	s.syncs += f.syncs
	s.received += f.received
	s.cpu += f.cpu
}

// catchUpNode is one member of the benchmark's cluster.
type catchUpNode struct {
	name               string
	httpPort, gossip   int
	dir, url           string
	p                  *proc
	join               string // --join, empty for the first node
	started, readyTime time.Time
}

// catchUpBinaryOnce runs one catch-up on a fresh cluster of three,
// restarting the away node at least wait after the last write.
func catchUpBinaryOnce(b *testing.B, wait time.Duration) catchUpFigures {
	b.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 2 * catchUpClients, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	base := b.TempDir()
	var nodes []*catchUpNode
	for i := range 3 {
		nd := &catchUpNode{name: "node-" + string(rune('a'+i)), httpPort: freePort(b), gossip: freePort(b)}
		nd.dir = fmt.Sprintf("%s/%s", base, nd.name)
		nd.url = fmt.Sprintf("http://127.0.0.1:%d", nd.httpPort)
		if i > 0 {
			nd.join = fmt.Sprintf("127.0.0.1:%d", nodes[0].gossip)
		}
		nodes = append(nodes, nd)
	}
	defer func() {
		for _, nd := range nodes {
			if nd.p != nil && !nd.p.exited() {
				nd.p.signal(b, syscall.SIGTERM)
				<-nd.p.done
			}
		}
	}()
	for _, nd := range nodes {
		nd.start(b)
		nd.waitReady(b, hc)
	}
	waitAllAlive(b, hc, nodes)

	away := nodes[2]
	away.p.signal(b, syscall.SIGTERM)
	select {
	case <-away.p.done:
	case <-time.After(catchUpStop):
		b.Fatalf("%s still running %v after SIGTERM", away.name, catchUpStop)
	}
	writeCatchUpKeys(b, hc, nodes[:2])
	written := time.Now()
	for _, nd := range nodes[:2] {
		waitCount(b, hc, nd, time.Now().Add(catchUpWait))
	}
	time.Sleep(time.Until(written.Add(wait))) // the case's condition, not a wait for one

	cpu0 := procCPU(nodes[0].p) + procCPU(nodes[1].p)
	b.StartTimer()
	away.start(b)
	away.waitReady(b, hc)
	atReady, end := waitCount(b, hc, away, away.started.Add(catchUpWait))
	b.StopTimer()
	cpu := procCPU(nodes[0].p) + procCPU(nodes[1].p) + procCPU(away.p) - cpu0

	f := catchUpFigures{
		ready:    away.readyTime.Sub(away.started).Seconds(),
		all:      end.Sub(away.started).Seconds(),
		atReady:  float64(atReady) / catchUpKeys,
		received: metricValue(b, away.p, "disperse_cluster_replication_entries_received_total"),
		cpu:      cpu,
	}
	checkCatchUpValues(b, hc, away)
	f.recovery, f.sync, f.pulled = firstSyncLog(away.p)
	for _, nd := range nodes {
		f.syncs += syncsWith(nd.p, away.name, end)
	}
	return f
}

// start starts the node's process on its name, ports and data directory.
// startNode picks ports of its own; the flags here come later on the
// command line, and the last of a repeated flag wins.
func (nd *catchUpNode) start(b *testing.B) {
	b.Helper()
	args := []string{"--name", nd.name, "--http-port", fmt.Sprint(nd.httpPort), "--gossip-port", fmt.Sprint(nd.gossip)}
	if nd.join != "" {
		args = append(args, "--join", nd.join)
	}
	nd.started = time.Now()
	nd.p = startNode(b, nd.dir, args...)
	nd.p.url = nd.url
}

// waitReady polls /readyz every 5 ms until the first 200 and records when
// that answer came.
func (nd *catchUpNode) waitReady(b *testing.B, hc *http.Client) {
	b.Helper()
	deadline := nd.started.Add(catchUpStart)
	for {
		if nd.p.exited() {
			b.Fatalf("%s exited before it was ready: %v\n%s", nd.name, nd.p.err, tail(nd.p.stderr.String(), 10))
		}
		code, _, err := httpGet(hc, nd.url+"/readyz")
		if err == nil && code == http.StatusOK {
			nd.readyTime = time.Now()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: /readyz not 200 %v after its start", nd.name, catchUpStart)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAllAlive waits until every node lists all of them alive.
func waitAllAlive(b *testing.B, hc *http.Client, nodes []*catchUpNode) {
	b.Helper()
	deadline := time.Now().Add(catchUpStart)
	for {
		alive := 0
		for _, nd := range nodes {
			_, body, err := httpGet(hc, nd.url+"/cluster/members")
			var ms []nodeMember
			if err == nil && json.Unmarshal([]byte(body), &ms) == nil {
				for _, m := range ms {
					if m.State == "alive" {
						alive++
					}
				}
			}
		}
		if alive == len(nodes)*len(nodes) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the cluster did not form within %v", catchUpStart)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// catchUpKey is the i-th key the benchmark writes.
func catchUpKey(i int) string { return fmt.Sprintf("%s%06d", catchUpPrefix, i) }

// catchUpValueOf is the value written under the i-th key: catchUpValue
// bytes that name the key.
func catchUpValueOf(i int) []byte {
	v := bytes.Repeat([]byte{'v'}, catchUpValue)
	copy(v, catchUpKey(i))
	return v
}

// writeCatchUpKeys PUTs every key once, key i to nodes[i%len(nodes)],
// from catchUpClients clients; each answer must be 200.
func writeCatchUpKeys(b *testing.B, hc *http.Client, nodes []*catchUpNode) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range catchUpClients {
		wg.Go(func() {
			for failed.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= catchUpKeys {
					return
				}
				u := nodes[i%len(nodes)].url + "/cache/" + catchUpKey(i)
				req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(catchUpValueOf(i)))
				if err != nil {
					failed.Store(&err)
					return
				}
				req.Header.Set("Content-Type", "application/octet-stream")
				resp, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("PUT %s: %s", u, resp.Status)
					}
				}
				if err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

// waitCount lists catchUpPrefix on nd until a listing holds catchUpKeys
// keys, or deadline. It returns how many keys the first listing held and
// when the first complete one ended.
func waitCount(b *testing.B, hc *http.Client, nd *catchUpNode, deadline time.Time) (first int, end time.Time) {
	b.Helper()
	first = -1
	for {
		n, err := countKeys(hc, nd.url, catchUpPrefix)
		now := time.Now()
		if err == nil && first < 0 {
			first = n
		}
		if err == nil && n == catchUpKeys {
			return first, now
		}
		if err == nil && n > catchUpKeys {
			b.Fatalf("%s lists %d keys under %s, only %d were written", nd.name, n, catchUpPrefix, catchUpKeys)
		}
		if now.After(deadline) {
			b.Fatalf("%s: %d of %d keys listed (last error %v) at the deadline", nd.name, n, catchUpKeys, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countKeys pages through GET /cache?prefix= and counts the keys.
func countKeys(hc *http.Client, base, prefix string) (int, error) {
	n, after := 0, ""
	for {
		u := fmt.Sprintf("%s/cache?prefix=%s&limit=%d&after=%s", base, url.QueryEscape(prefix), catchUpPage, url.QueryEscape(after))
		code, body, err := httpGet(hc, u)
		if err != nil {
			return n, err
		}
		if code != http.StatusOK {
			return n, fmt.Errorf("GET %s: %d %.200s", u, code, body)
		}
		var page struct {
			Keys []string `json:"keys"`
			Next string   `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			return n, fmt.Errorf("GET %s: %v", u, err)
		}
		n += len(page.Keys)
		if page.Next == "" {
			return n, nil
		}
		after = page.Next
	}
}

// checkCatchUpValues GETs every 100th key from nd and compares the value.
func checkCatchUpValues(b *testing.B, hc *http.Client, nd *catchUpNode) {
	b.Helper()
	for i := 0; i < catchUpKeys; i += 100 {
		code, body, err := httpGet(hc, nd.url+"/cache/"+catchUpKey(i))
		if err != nil || code != http.StatusOK || body != string(catchUpValueOf(i)) {
			b.Fatalf("%s: GET %s: %d %.40q %v, want 200 and the value written", nd.name, catchUpKey(i), code, body, err)
		}
	}
}

// procCPU is the CPU time, user and system, the running process p has
// used, read from /proc (Linux; 0 elsewhere). The kernel counts it in
// ticks of 1/100 s.
func procCPU(p *proc) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	return (utime + stime) / 100
}

// logLines decodes the process's JSON log lines.
func logLines(p *proc) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// firstSyncLog reads from the restarted node's log how long its recovery
// took, and how long its first completed sync took and how many entries
// that sync pulled.
func firstSyncLog(p *proc) (recovery, sync, pulled float64) {
	for _, m := range logLines(p) {
		switch m["msg"] {
		case "recovered":
			recovery, _ = m["took_seconds"].(float64)
		case "synced":
			if sync == 0 {
				sync, _ = m["took_seconds"].(float64)
				pulled, _ = m["pulled"].(float64)
			}
		}
	}
	return recovery, sync, pulled
}

// syncsWith counts the syncs p's node (or peer itself, when p is peer's
// process) logged as done by end that involved peer and moved entries.
// Only a sync's initiator logs it.
func syncsWith(p *proc, peer string, end time.Time) float64 {
	n := 0.0
	for _, m := range logLines(p) {
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"]))
		got, _ := m["pulled"].(float64)
		sent, _ := m["pushed"].(float64)
		if m["msg"] == "synced" && !at.After(end) && got+sent > 0 && (m["peer"] == peer || m["node"] == peer) {
			n++
		}
	}
	return n
}
