package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// e2eBound is the --max-memory of the memory tests, and e2eOverhead what
// they allow resident memory above it: the binary's code and data, the
// runtime, the HTTP server and gossip, and the snapshot's mapped pages
// (the figure BENCHMARKS.md states).
const (
	e2eBound    = 64 << 20
	e2eOverhead = 48 << 20
)

// resident is a process's resident memory: anonymous (heap, stacks) and
// file-backed (the binary's pages, mapped files such as the snapshot).
type resident struct{ anon, file int64 }

func (r resident) total() int64 { return r.anon + r.file }

func (r resident) String() string {
	return fmt.Sprintf("%.1f MiB (anonymous %.1f, file %.1f)", float64(r.total())/(1<<20), float64(r.anon)/(1<<20), float64(r.file)/(1<<20))
}

// rssOf reads a process's resident memory from /proc.
func rssOf(pid int) resident {
	var r resident
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		switch name {
		case "RssAnon":
			r.anon = kb << 10
		case "RssFile":
			r.file = kb << 10
		}
	}
	return r
}

// peakRSS samples the resident memory of p until stop is called, which
// returns the largest sample.
func peakRSS(p *proc) (stop func() resident) {
	var peak resident
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if r := rssOf(p.cmd.Process.Pid); r.total() > peak.total() {
				peak = r
			}
			select {
			case <-quit:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() resident { close(quit); <-done; return peak }
}

// fillNodes PUTs keys m-from..m-(to-1) with 1000-byte values from 16
// clients, key m-i to urls[i%len(urls)], and counts the answers by status.
func fillNodes(t *testing.T, urls []string, from, to int) map[int]int {
	t.Helper()
	return fillTTL(t, urls, from, to, nil)
}

// fillTTL is fillNodes with key m-i given the TTL ttl(i) (?ttl=), or none
// when ttl is nil.
func fillTTL(t *testing.T, urls []string, from, to int, ttl func(i int) time.Duration) map[int]int {
	t.Helper()
	value := strings.Repeat("v", 1000)
	var mu sync.Mutex
	counts := map[int]int{}
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				url := fmt.Sprintf("%s/cache/m-%d", urls[i%len(urls)], i)
				if ttl != nil {
					url += "?ttl=" + ttl(i).String()
				}
				status, err := httpPut(c, url, value)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// fillWithin is fillTTL of one node under --max-memory e2eBound with its
// resident memory sampled throughout: the test fails (and goes on) if the
// peak passed the bound plus e2eOverhead.
func fillWithin(t *testing.T, p *proc, from, to int, ttl func(i int) time.Duration) map[int]int {
	t.Helper()
	stop := peakRSS(p)
	counts := fillTTL(t, []string{p.url}, from, to, ttl)
	peak := stop()
	t.Logf("%d PUTs of m-%d..: %v; peak resident memory %v (bound %d MiB)", to-from, from, counts, peak, e2eBound>>20)
	if peak.total() > e2eBound+e2eOverhead {
		t.Errorf("peak resident memory %v, bound %d MiB plus %d MiB", peak, e2eBound>>20, e2eOverhead>>20)
	}
	return counts
}

// e2eFillCount is how many 1000-byte keys make three times the bound.
const e2eFillCount = 3 * e2eBound / 1100

// TestE2EMaxMemoryAllKeys fills a node with --max-memory to three times
// the bound over HTTP: every PUT succeeds, resident memory stays within the
// bound plus the overhead, the first keys are evicted (404) and stay so
// after a restart, and the last ones are served.
func TestE2EMaxMemoryAllKeys(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	flags := []string{"--max-memory", fmt.Sprint(e2eBound), "--eviction", "allkeys", "--fsync", "never"}
	p := startNode(t, dir, flags...)
	p.waitReady(t)
	counts := fillWithin(t, p, 0, e2eFillCount, nil)
	if counts[http.StatusOK] != e2eFillCount {
		t.Fatalf("answers %v, want %d 200s", counts, e2eFillCount)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	served := func(i int) bool {
		status, _, err := httpGet(c, fmt.Sprintf("%s/cache/m-%d", p.url, i))
		if err != nil {
			t.Fatal(err)
		}
		return status == http.StatusOK
	}
	var gone []int
	for i := 0; i < 200; i++ {
		if !served(i) {
			gone = append(gone, i)
		}
	}
	if len(gone) < 150 {
		t.Fatalf("only %d of the first 200 keys evicted", len(gone))
	}
	if !served(e2eFillCount - 1) {
		t.Fatal("the last key written is not served")
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	p = startNode(t, dir, flags...)
	p.waitReady(t)
	for _, i := range gone {
		status, _, err := httpGet(c, fmt.Sprintf("%s/cache/m-%d", p.url, i))
		if err != nil || status != http.StatusNotFound {
			t.Fatalf("evicted key m-%d after a restart: %d, %v", i, status, err)
		}
	}
	if !served(e2eFillCount - 1) {
		t.Fatal("the last key written is not served after a restart")
	}
}

// servedOf GETs m-i for each i in keys and returns how many are served
// (200); any other answer than 200 or 404 fails the test.
func servedOf(t *testing.T, p *proc, keys ...int) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	n := 0
	for _, i := range keys {
		status, _, err := httpGet(c, fmt.Sprintf("%s/cache/m-%d", p.url, i))
		if err != nil || status != http.StatusOK && status != http.StatusNotFound {
			t.Fatalf("GET m-%d: %d, %v", i, status, err)
		}
		if status == http.StatusOK {
			n++
		}
	}
	return n
}

// span is the keys from..to-1.
func span(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestE2EMaxMemoryVolatile fills a node under --eviction volatile to three
// times its bound over HTTP: first keys without a TTL, about a third of
// what the index may hold, then keys with one. Every PUT succeeds, the
// bound holds, no key without a TTL is evicted, and the first keys with
// one are.
func TestE2EMaxMemoryVolatile(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--max-memory", fmt.Sprint(e2eBound), "--eviction", "volatile", "--fsync", "never")
	p.waitReady(t)
	persistent := e2eFillCount / 18
	counts := fillWithin(t, p, 0, persistent, nil)
	withTTL := fillWithin(t, p, persistent, e2eFillCount, func(int) time.Duration { return time.Hour })
	if counts[http.StatusOK] != persistent || withTTL[http.StatusOK] != e2eFillCount-persistent {
		t.Fatalf("answers %v and %v, want every PUT 200", counts, withTTL)
	}
	if n := servedOf(t, p, span(0, persistent)...); n != persistent {
		t.Fatalf("%d of the %d keys without a TTL served: volatile evicted the others", n, persistent)
	}
	if n := servedOf(t, p, span(persistent, persistent+200)...); n > 50 {
		t.Fatalf("%d of the first 200 keys with a TTL still served", n)
	}
	if servedOf(t, p, e2eFillCount-1) != 1 {
		t.Fatal("the last key written is not served")
	}
}

// TestE2EMaxMemoryVolatileTTL fills a node under --eviction volatile-ttl
// to three times its bound over HTTP with TTLs that shorten as the keys
// are written: key i expires an hour and e2eFillCount-i seconds after it
// is written. Each write makes room by evicting what expires first, the
// keys written just before it: the node keeps the first keys, whose
// expiry is latest, and evicts those in between. One more key, written
// alone after the fill with the soonest expiry of all, is served: the
// write that evicts does not evict itself. (The last keys of the fill are
// not checked: its 16 writers finish in any order, and a key that lands
// after m-(e2eFillCount-1) may evict it, as it should.)
func TestE2EMaxMemoryVolatileTTL(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--max-memory", fmt.Sprint(e2eBound), "--eviction", "volatile-ttl", "--fsync", "never")
	p.waitReady(t)
	counts := fillWithin(t, p, 0, e2eFillCount, func(i int) time.Duration {
		return time.Hour + time.Duration(e2eFillCount-i)*time.Second
	})
	if counts[http.StatusOK] != e2eFillCount {
		t.Fatalf("answers %v, want %d 200s", counts, e2eFillCount)
	}
	if n := servedOf(t, p, span(0, 200)...); n != 200 {
		t.Fatalf("%d of the first 200 keys, which expire last, served", n)
	}
	if n := servedOf(t, p, span(e2eFillCount/2, e2eFillCount/2+200)...); n > 50 {
		t.Fatalf("%d of 200 keys from the middle, which expire before the first ones, still served", n)
	}
	if status, err := httpPut(&http.Client{Timeout: 10 * time.Second},
		fmt.Sprintf("%s/cache/m-%d?ttl=1h", p.url, e2eFillCount), strings.Repeat("v", 1000)); err != nil || status != http.StatusOK {
		t.Fatalf("PUT after the fill: %d, %v", status, err)
	}
	if servedOf(t, p, e2eFillCount) != 1 {
		t.Fatal("the key written after the fill, which expires first, is not served")
	}
}

// TestE2EMaxMemoryRESPPipeline fills a bounded node to three times its
// bound through one Redis protocol connection as redis-cli --pipe does:
// every command written without waiting for a reply, the replies read by
// a second goroutine. The bound holds as it does over HTTP: a snapshot
// writing keys that were overwritten or evicted meanwhile once kept their
// old values alive, which took this fill to 199 MiB at its 128 MiB bound.
func TestE2EMaxMemoryRESPPipeline(t *testing.T) {
	needBinary(t)
	const bound = 2 * e2eBound // where the leak showed clearly
	count := 3 * bound / 1100
	p := startNode(t, t.TempDir(), "--max-memory", fmt.Sprint(bound), "--eviction", "allkeys", "--fsync", "never")
	p.waitReady(t)
	stop := peakRSS(p)
	pipeSets(t, p, "m-", count, 1000)
	peak := stop()
	t.Logf("%d pipelined SETs: peak resident memory %v (bound %d MiB)", count, peak, bound>>20)
	if peak.total() > bound+e2eOverhead {
		t.Errorf("peak resident memory %v, bound %d MiB plus %d MiB", peak, bound>>20, e2eOverhead>>20)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if status, _, err := httpGet(c, fmt.Sprintf("%s/cache/m-%d", p.url, count-1)); err != nil || status != http.StatusOK {
		t.Fatalf("the last key set: %d, %v", status, err)
	}
}

// pipeSets sends count SETs of keys prefix0, prefix1, ... with values of
// size bytes through one Redis-protocol connection, as one pipeline, and
// checks that each is answered +OK.
func pipeSets(t *testing.T, p *proc, prefix string, count, size int) {
	t.Helper()
	conn, err := net.Dial("tcp", p.resp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	replies := make(chan error, 1)
	go func() {
		r := bufio.NewReader(conn)
		for i := 0; i < count; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				replies <- fmt.Errorf("reply %d: %w", i, err)
				return
			}
			if line != "+OK\r\n" {
				replies <- fmt.Errorf("reply %d: %q", i, line)
				return
			}
		}
		replies <- nil
	}()
	w := bufio.NewWriterSize(conn, 64<<10)
	value := strings.Repeat("v", size)
	for i := 0; i < count; i++ {
		key := fmt.Sprint(prefix, i)
		fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := <-replies; err != nil {
		t.Fatal(err)
	}
}

// TestE2EMemoryReturnedWhenQuiet: a node on defaults (no bound) that took
// a burst of writes gives the heap's free memory back once it is quiet,
// instead of staying resident at the heap's high-water mark (twice the
// index and more, for as long as no allocation makes the collector run);
// and once ready it has let go of the binary's pages that only starting
// used, and after the trim of those the burst touched. Only the log level
// differs from the defaults: the trim's line, at debug, says what it did.
func TestE2EMemoryReturnedWhenQuiet(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--log-level", "debug")
	p.waitReady(t)
	// Ready, the node has let go of the binary's pages that starting
	// touched.
	checkCodeReleased(t, p)
	const keys, size = 100_000, 1000
	// The second pass leaves the first pass's values behind as garbage.
	pipeSets(t, p, "q-", keys, size)
	pipeSets(t, p, "q-", keys, size)
	used := int64(metricValue(t, p, "disperse_memory_used_bytes"))
	if used < keys*size {
		t.Fatalf("the index holds %d bytes for %d values of %d bytes", used, keys, size)
	}
	// Once quiet, the node collects and gives the free pages back (the
	// second pass's garbage is about 200 MB): what stays is the index, and
	// room for the runtime, the binary and the snapshot's page buffers.
	// Before the trim it sits at the index plus 105-120 MiB, after it at
	// the index plus 45-60.
	limit := used + 100<<20
	var last resident
	waitFor(t, time.Minute, "a trim to bring resident memory down", func() bool {
		last = rssOf(p.cmd.Process.Pid)
		return last.anon <= limit && metricValue(t, p, "disperse_memory_trims_total") >= 1
	})
	returned := metricValue(t, p, "disperse_memory_trimmed_bytes_total")
	t.Logf("index %d MiB; resident after a trim: %v (limit %d MiB anonymous); trims gave back %.0f MiB",
		used>>20, last, limit>>20, returned/(1<<20))
	if returned < 64<<20 {
		t.Fatalf("the trims gave back %.0f bytes of a 200 MB burst's garbage", returned)
	}
	l, ok := p.logLine("memory returned to the system")
	if !ok {
		t.Fatal("no log line for the trim")
	}
	before, _ := l["code_before"].(float64)
	after, _ := l["code_after"].(float64)
	if before <= 0 || after >= before {
		t.Fatalf("the trim left the code pages the burst touched: %v", l)
	}
	t.Logf("code pages resident: %.1f MiB before the trim, %.1f after", before/(1<<20), after/(1<<20))
}

// TestE2ERestartReturnsRecoveryGarbage: a node restarted on defaults
// answers ready with the garbage of its recovery (made under a raised
// GOGC) given back: its heap, in objects and in free pages still mapped,
// holds no more than the index is charged. Many small keys make the most
// garbage per byte held; they are written without fsync, for speed.
func TestE2ERestartReturnsRecoveryGarbage(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	p := startNode(t, dir, "--fsync", "never")
	p.waitReady(t)
	pipeSets(t, p, "r-", 800_000, 100)
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	p = startNode(t, dir)
	p.waitReady(t)
	m := scrape(t, p)
	for _, name := range []string{"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_heap_alloc_bytes", "disperse_memory_used_bytes"} {
		if _, ok := m[name]; !ok {
			t.Fatalf("no %s in /metrics", name)
		}
	}
	index := m["disperse_memory_used_bytes"]
	heap := m["go_memstats_heap_alloc_bytes"] + m["go_memstats_heap_idle_bytes"] - m["go_memstats_heap_released_bytes"]
	t.Logf("once recovered: index charged %.1f MiB, heap %.1f MiB, resident %v", index/(1<<20), heap/(1<<20), rssOf(p.cmd.Process.Pid))
	if heap > index {
		t.Errorf("the heap holds %.1f MiB once recovered, more than the %.1f MiB the index is charged", heap/(1<<20), index/(1<<20))
	}
}

// TestE2EMaxMemoryNoEviction: under noeviction a node at its bound answers
// PUTs 507 memory_full, keeps serving reads and deletes, and takes writes
// again once deletes made room.
func TestE2EMaxMemoryNoEviction(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--max-memory", fmt.Sprint(e2eBound), "--eviction", "noeviction", "--fsync", "never")
	p.waitReady(t)
	counts := fillWithin(t, p, 0, e2eFillCount, nil)
	if counts[http.StatusInsufficientStorage] == 0 || counts[http.StatusOK]+counts[http.StatusInsufficientStorage] != e2eFillCount {
		t.Fatalf("answers %v", counts)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, p.url+"/cache/one-more", strings.NewReader(strings.Repeat("v", 1000)))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Code string }
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage || err != nil || body.Code != "memory_full" {
		t.Fatalf("PUT at the bound: %d %q (%v), want 507 memory_full", resp.StatusCode, body.Code, err)
	}
	// Reads and deletes work at the bound.
	held := counts[http.StatusOK]
	found := 0
	for i := 0; i < e2eFillCount && found < held/2; i++ {
		status, _, err := httpGet(c, fmt.Sprintf("%s/cache/m-%d", p.url, i))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK {
			continue
		}
		found++
		req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/cache/m-%d", p.url, i), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE at the bound: %d", resp.StatusCode)
		}
	}
	if status, err := httpPut(c, p.url+"/cache/after-deletes", strings.Repeat("v", 1000)); err != nil || status != http.StatusOK {
		t.Fatalf("PUT after deletes: %d, %v", status, err)
	}
}

// TestE2EClusterAtItsBound: three nodes, each at its --max-memory under a
// write load of twice the bound in values (eight times what the index may
// hold), spread over all three, evict on their own without anti-entropy
// sending evicted keys back: the syncs (every
// second here, so that dozens run during the load) repair fewer entries
// than 1% of the evictions. Deletes of keys the nodes still hold reach
// every node and stay, through further syncs.
func TestE2EClusterAtItsBound(t *testing.T) {
	const bound = 32 << 20 // the least --max-memory takes
	c := newCluster(t, 3, "--max-memory", fmt.Sprint(bound), "--fsync", "never", "--antientropy-interval", "1s")
	urls := []string{c.nodes[0].url, c.nodes[1].url, c.nodes[2].url}
	keys := 2 * bound / 1100
	counts := fillNodes(t, urls, 0, keys)
	if counts[http.StatusOK] != keys {
		t.Fatalf("answers %v, want %d 200s", counts, keys)
	}
	var deleted []string
	for i := keys - 300; i < keys; i += 3 {
		key := fmt.Sprintf("m-%d", i)
		if err := c.tryDelete(i%3, key); err != nil {
			t.Fatal(err)
		}
		deleted = append(deleted, key)
	}
	sum := func(name string) float64 {
		total := 0.0
		for i := range c.nodes {
			v, _ := c.metric(i, name)
			total += v
		}
		return total
	}
	allGone := func() error {
		for i := range c.nodes {
			for _, key := range deleted {
				if status, _, err := c.get(i, key); err != nil || status != http.StatusNotFound {
					return fmt.Errorf("%s on %s: %d %v, want 404", key, c.nodes[i].name, status, err)
				}
			}
		}
		return nil
	}
	eventually(t, 10*time.Second, "the deletes on every node", allGone)
	// Three more rounds of syncs on every node, then the same checks.
	syncs := sum(`disperse_cluster_syncs_total{result="ok"}`)
	eventually(t, 30*time.Second, "more syncs", func() error {
		if now := sum(`disperse_cluster_syncs_total{result="ok"}`); now < syncs+9 {
			return fmt.Errorf("%v syncs since the deletes", now-syncs)
		}
		return nil
	})
	if err := allGone(); err != nil {
		t.Fatalf("after further syncs: %v", err)
	}
	evicted := sum(`disperse_evictions_total{reason="value"}`) + sum(`disperse_evictions_total{reason="stub"}`)
	repaired := sum("disperse_cluster_antientropy_entries_repaired_total")
	t.Logf("%d writes over three nodes: %.0f evictions, %.0f entries repaired by %.0f syncs", keys, evicted, repaired, sum(`disperse_cluster_syncs_total{result="ok"}`))
	if evicted < float64(keys) {
		t.Fatalf("%.0f evictions on three nodes for %d writes of twice a node's bound", evicted, keys)
	}
	if repaired >= evicted/100 {
		t.Fatalf("anti-entropy repaired %.0f entries for %.0f evictions, want under 1%%", repaired, evicted)
	}
}
