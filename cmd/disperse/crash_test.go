package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCrashKeepsAcknowledgedWrites kills a loaded node with SIGKILL several
// times and checks, after each restart on the same data directory, that:
//
//   - every write answered 200 is there with its value, or with a later
//     value of the same key from the same client that was in flight when the
//     node died (each key has one writer, which writes it in order);
//   - a key whose last acknowledged write is a delete stays deleted (unless
//     a later put was in flight);
//   - no key holds a value nobody attempted to write, and no key exists
//     that nobody wrote.
//
// The node runs with --fsync always, so a 200 means on disk (a SIGKILL
// keeps the page cache, so this checks recovery's logic, not the fsync
// itself). A 4 KiB --snapshot-wal-bytes and a 10ms --snapshot-interval make
// snapshots run back to back under load. Each cycle waits until the node's
// snapshot histogram (GET /metrics) has counted several, then polls
// disperse_snapshot_in_progress and sends SIGKILL the moment it reads 1, so
// every kill lands in or right at the end of a snapshot transaction, and
// every restart recovers from a snapshot plus a log tail.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	needBinary(t)
	const (
		cycles  = 5
		clients = 32
		hotKeys = 4 // keys per client that it overwrites again and again
	)
	dir := t.TempDir()
	m := newCrashModel(clients)
	flags := []string{"--fsync", "always", "--snapshot-wal-bytes", "4KiB", "--snapshot-interval", "10ms"}
	for cycle := range cycles {
		p := startNode(t, dir, flags...)
		p.waitReady(t)
		m.verify(t, p, cycle)
		snaps0, _ := snapshotStats(t, p)
		start := time.Now()
		var acked atomic.Int64
		stop := make(chan struct{})
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() { m.clients[c].run(hc, p.url, cycle, hotKeys, &acked, stop) })
		}
		minAcked := int64(300 * (cycle + 1))
		var snaps, busy float64
		waitFor(t, 60*time.Second, "writes and snapshots under load", func() bool {
			snaps, busy = snapshotStats(t, p)
			return acked.Load() >= minAcked && snaps >= snaps0+3
		})
		waitFor(t, 30*time.Second, "a snapshot in progress", func() bool {
			return metricValue(t, p, snapshotRunningMetric) == 1
		})
		p.signal(t, syscall.SIGKILL)
		p.wait(t, 10*time.Second)
		close(stop)
		wg.Wait()
		t.Logf("cycle %d: killed during a snapshot after %d acknowledged writes; %.0f snapshots ran, busy %.0f%% of the load",
			cycle, acked.Load(), snaps-snaps0, 100*busy/time.Since(start).Seconds())
	}
	p := startNode(t, dir, flags...)
	p.waitReady(t)
	m.verify(t, p, cycles)
	if rec, ok := p.logLine("recovered"); ok {
		t.Logf("last recovery: %v", rec)
	}
}

// snapshotStats reads from /metrics how many snapshots the engine has
// written and the seconds they took in all.
func snapshotStats(t testing.TB, p *proc) (count, seconds float64) {
	t.Helper()
	m := scrape(t, p)
	count, ok1 := m[snapshotMetric+"_count"]
	seconds, ok2 := m[snapshotMetric+"_sum"]
	if !ok1 || !ok2 {
		t.Fatalf("no %s histogram in /metrics", snapshotMetric)
	}
	return count, seconds
}

// metricValue reads one unlabelled metric from /metrics.
func metricValue(t testing.TB, p *proc, name string) float64 {
	t.Helper()
	v, ok := scrape(t, p)[name]
	if !ok {
		t.Fatalf("no %s in /metrics", name)
	}
	return v
}

// scrape reads the node's unlabelled metrics.
func scrape(t testing.TB, p *proc) map[string]float64 {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		name, val := line[:i], line[i+1:] // a labelled sample keeps its labels in name
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		m[name] = f
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return m
}

// snapshotRunningMetric is 1 while the engine writes a snapshot.
const snapshotRunningMetric = "disperse_snapshot_in_progress"

// snapshotMetric is the engine's histogram of snapshot durations.
const snapshotMetric = "disperse_snapshot_seconds"

// crashModel is what the clients tried to write and what the node answered.
type crashModel struct {
	clients []*crashClient
}

func newCrashModel(n int) *crashModel {
	m := &crashModel{}
	for i := range n {
		m.clients = append(m.clients, &crashClient{id: i, keys: map[string]*keyLog{}})
	}
	return m
}

// keyLog is one key's history as its only writer saw it. Counters grow with
// every write of the client, across cycles.
type keyLog struct {
	acked int64          // counter of the last write answered 2xx; -1 if none
	ops   map[int64]bool // writes sent since the last check: true put, false delete
}

// crashClient writes its own keys, one request at a time. Only its goroutine
// touches it while the load runs.
type crashClient struct {
	id      int
	counter int64
	keys    map[string]*keyLog
}

func crashValue(key string, client int, counter int64) string {
	return fmt.Sprintf("%s|%d|%d|%s", key, client, counter, strings.Repeat("x", 200))
}

// run writes until the node stops answering or stop closes: new keys,
// overwrites of its hot keys, and now and then a delete of one. A write is
// recorded as sent before it is sent and as acknowledged on a 2xx.
func (c *crashClient) run(hc *http.Client, base string, cycle, hotKeys int, acked *atomic.Int64, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		key, put := fmt.Sprintf("new/%d/%d/%d", cycle, c.id, n), true
		if n%2 == 1 {
			key, put = fmt.Sprintf("hot/%d/%d", c.id, (n/2)%hotKeys), (n/2)%7 != 6
		}
		kl := c.keys[key]
		if kl == nil {
			kl = &keyLog{acked: -1, ops: map[int64]bool{}}
			c.keys[key] = kl
		}
		c.counter++
		kl.ops[c.counter] = put
		var code int
		var err error
		if put {
			code, err = httpPut(hc, base+"/cache/"+key, crashValue(key, c.id, c.counter))
		} else {
			code, err = httpDelete(hc, base+"/cache/"+key)
		}
		if err != nil || code/100 != 2 {
			return // the node is gone (or failing): this write stays in flight
		}
		kl.acked = c.counter
		acked.Add(1)
	}
}

func httpDelete(c *http.Client, url string) (int, error) {
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// verify checks every key against the model on a freshly recovered node,
// then takes what the node holds as the new durable state.
func (m *crashModel) verify(t *testing.T, p *proc, cycle int) {
	t.Helper()
	owner := map[string]*crashClient{}
	for _, c := range m.clients {
		for k := range c.keys {
			owner[k] = c
		}
	}
	for _, k := range listAllKeys(t, p) {
		if owner[k] == nil {
			t.Fatalf("cycle %d: key %q exists but nobody wrote it", cycle, k)
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: len(m.clients)}}
	var wg sync.WaitGroup
	errs := make(chan error, len(m.clients))
	for _, c := range m.clients {
		wg.Go(func() {
			if err := c.verify(hc, p.url); err != nil {
				errs <- fmt.Errorf("cycle %d: %w", cycle, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// verify checks this client's keys and resets their logs to what the node
// holds, which recovery has just proved durable. A key found absent stays in
// the model with no writes, so a value that comes back later is caught.
func (c *crashClient) verify(hc *http.Client, base string) error {
	for key, kl := range c.keys {
		code, body, err := httpGet(hc, base+"/cache/"+key)
		if err != nil {
			return fmt.Errorf("GET %s: %w", key, err)
		}
		switch code {
		case http.StatusNotFound:
			if !kl.mayBeAbsent() {
				return fmt.Errorf("key %s lost: write %d was acknowledged", key, kl.acked)
			}
			*kl = keyLog{acked: -1, ops: map[int64]bool{}}
			continue
		case http.StatusOK:
		default:
			return fmt.Errorf("GET %s: status %d", key, code)
		}
		got, err := parseCrashValue(body, key, c.id)
		if err != nil {
			return err
		}
		if put, ok := kl.ops[got]; !ok || !put {
			return fmt.Errorf("key %s holds write %d, which was never attempted", key, got)
		}
		if got < kl.acked {
			return fmt.Errorf("key %s holds write %d, older than acknowledged write %d", key, got, kl.acked)
		}
		*kl = keyLog{acked: got, ops: map[int64]bool{got: true}}
	}
	return nil
}

// mayBeAbsent: nothing was acknowledged, or a delete was sent at or after
// the last acknowledged write.
func (kl *keyLog) mayBeAbsent() bool {
	if kl.acked < 0 {
		return true
	}
	for n, put := range kl.ops {
		if !put && n >= kl.acked {
			return true
		}
	}
	return false
}

func parseCrashValue(body, key string, client int) (int64, error) {
	parts := strings.Split(body, "|")
	if len(parts) != 4 || parts[0] != key || parts[1] != strconv.Itoa(client) || parts[3] != strings.Repeat("x", 200) {
		return 0, fmt.Errorf("key %s holds a value nobody wrote: %.80q", key, body)
	}
	return strconv.ParseInt(parts[2], 10, 64)
}

// listAllKeys pages through GET /cache.
func listAllKeys(t testing.TB, p *proc) []string {
	t.Helper()
	var all []string
	after := ""
	for {
		code, body, err := httpGet(http.DefaultClient, p.url+"/cache?limit=10000&after="+url.QueryEscape(after))
		if err != nil || code != http.StatusOK {
			t.Fatalf("list: %d %v %s", code, err, body)
		}
		var page struct {
			Keys []string `json:"keys"`
			Next string   `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("list: %v: %s", err, body)
		}
		all = append(all, page.Keys...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}
