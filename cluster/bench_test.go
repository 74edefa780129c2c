package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
)

const benchClients = 64

// benchPuts runs b.N puts of 100-byte values on n from benchClients
// goroutines and records in track, if set, when each put was answered.
func benchPuts(b *testing.B, n *Node, track *sync.Map) {
	b.Helper()
	value := make([]byte, 100)
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				key := fmt.Sprintf("k-%d-%d", g, i)
				if _, err := n.Put(context.Background(), Write{Key: key, Value: value}); err != nil {
					b.Error(err)
					return
				}
				if track != nil {
					track.Store(key, time.Now())
				}
			}
		}()
	}
	wg.Wait()
}

// syncModes runs a benchmark with the log committing each write to disk
// and without (all nodes of one benchmark share this machine's disk).
func syncModes(b *testing.B, run func(*testing.B, wal.SyncMode)) {
	for _, mode := range []struct {
		name string
		mode wal.SyncMode
	}{{"fsync=always", wal.SyncAlways}, {"fsync=never", wal.SyncNever}} {
		b.Run(mode.name, func(b *testing.B) { run(b, mode.mode) })
	}
}

// BenchmarkPutSingleNode is the baseline: PUTs on a node with no peers.
func BenchmarkPutSingleNode(b *testing.B) {
	syncModes(b, func(b *testing.B, mode wal.SyncMode) {
		c := newTestCluster(b, 1, func(_ *Config, ecfg *engine.Config) { ecfg.Sync = mode })
		b.ResetTimer()
		start := time.Now()
		benchPuts(b, c.nodes[0].node, nil)
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
	})
}

// BenchmarkPutReplicated writes to one of three nodes and stops the clock
// once every write is applied on both peers. It reports the throughput and
// the replication lag: from the origin's answer to the write being applied
// on a peer.
func BenchmarkPutReplicated(b *testing.B) { syncModes(b, benchPutReplicated) }

func benchPutReplicated(b *testing.B, mode wal.SyncMode) {
	c := newTestCluster(b, 3, func(cfg *Config, ecfg *engine.Config) {
		cfg.AntiEntropyInterval = 30 * time.Second // measure the fan-out alone
		ecfg.Sync = mode
	})
	var track sync.Map
	var mu sync.Mutex
	var lags []time.Duration
	var applied atomic.Int64
	for _, tn := range c.nodes[1:] {
		f := func(ents []engine.Entry) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			for _, e := range ents {
				lag := time.Duration(0) // applied before the origin answered
				if t0, ok := track.Load(e.Key); ok {
					lag = max(0, now.Sub(t0.(time.Time)))
				}
				lags = append(lags, lag)
			}
			applied.Add(int64(len(ents)))
		}
		tn.node.onApplied.Store(&f)
	}
	b.ResetTimer()
	start := time.Now()
	benchPuts(b, c.nodes[0].node, &track)
	want := int64(2 * b.N)
	waitFor(b, time.Minute, "every write on both peers", func() bool { return applied.Load() >= want })
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/took.Seconds(), "puts/s")
	mu.Lock()
	defer mu.Unlock()
	if len(lags) > 0 {
		slices.Sort(lags)
		b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "lag-p50-ms")
		b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "lag-p99-ms")
	}
	dropped := counterValue(b, c.nodes[0].node.metrics.entriesDropped)
	b.ReportMetric(dropped, "dropped")
	b.ReportMetric(counterValue(b, c.nodes[0].node.metrics.entriesSent)/counterValue(b, c.nodes[0].node.metrics.batchesSent), "entries/batch")
}

// BenchmarkRepair measures one sync between two nodes that hold the same
// keys but for 500 differing ones (250 only one side has, 250 the other
// side holds newer): the entries moved (the target is at most twice the
// differing keys) and the bytes of hashes and key lists exchanged.
func BenchmarkRepair(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			const differ = 500
			var moved, digest float64
			for range b.N {
				b.StopTimer()
				c := newTestCluster(b, 2, func(cfg *Config, ecfg *engine.Config) {
					cfg.AntiEntropyInterval = time.Hour
					ecfg.Sync = wal.SyncNever
				})
				c.waitReady(10*time.Second, 1)
				v := engine.Version{Time: c.nodes[0].node.clock.Now(), Node: 1}
				for _, tn := range c.nodes {
					loadKeys(b, tn.eng, keys, v)
				}
				for i := range differ {
					tn, e := c.nodes[0], engine.Entry{Key: fmt.Sprintf("only-%d", i), Value: []byte("x"), Version: v}
					if i%2 == 1 {
						tn, e = c.nodes[1], engine.Entry{Key: fmt.Sprintf("key-%09d", i*1999), Value: []byte("newer"), Version: engine.Version{Time: v.Time + 1, Node: 2}}
					}
					if _, err := tn.eng.ApplyBatch([]engine.Entry{e}); err != nil {
						b.Fatal(err)
					}
				}
				p, _ := c.nodes[0].node.mem.livePeer("node-1")
				b.StartTimer()
				st, err := c.nodes[0].node.sync.syncWith(p)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				moved += float64(st.pulled + st.pushed)
				digest += float64(st.digestBytes)
				for i := range c.nodes {
					c.stop(i)
				}
			}
			b.ReportMetric(moved/float64(b.N)/differ, "entries-sent/differing-key")
			b.ReportMetric(digest/float64(b.N)/1024, "digest-KiB")
		})
	}
}

// loadKeys applies keys entries, all at version v, straight to eng.
func loadKeys(b *testing.B, eng *engine.Engine, keys int, v engine.Version) {
	b.Helper()
	batch := make([]engine.Entry, 0, 10_000)
	for i := range keys {
		batch = append(batch, engine.Entry{Key: fmt.Sprintf("key-%09d", i), Value: []byte("v"), Version: v})
		if len(batch) == cap(batch) || i == keys-1 {
			if _, err := eng.ApplyBatch(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// catchUpEntries is how many entries BenchmarkCatchUp writes while one node
// is down.
const catchUpEntries = 100_000

// BenchmarkCatchUp stops one node of three, writes catchUpEntries 100-byte
// values to the other two, restarts the stopped node on its data directory
// and measures the time from the restart until its digests equal the
// others'. Only the syncs on join can close that gap: the writes were made
// while the node was gone, so no peer queued them for it. The logs never
// fsync, so the figure is the network part. It runs with the default
// AntiEntropyInterval, which must not matter. It reports the entries
// node-2 received (catchUpEntries if each missed write crossed once) and
// the syncs node-2 itself had completed at convergence (0 when its peers'
// syncs towards it got there first). BenchmarkCatchUpBinary in
// cmd/disperse measures the same on the built binary, from process start.
func BenchmarkCatchUp(b *testing.B) {
	for _, interval := range []time.Duration{DefaultConfig().AntiEntropyInterval} {
		b.Run(fmt.Sprintf("interval=%v", interval), func(b *testing.B) {
			var took time.Duration
			var repaired, received, rounds float64
			for range b.N {
				b.StopTimer()
				r := catchUpOnce(b, interval)
				took += r.took
				repaired += r.repaired
				received += r.received
				rounds += r.rounds
			}
			n := float64(b.N)
			b.ReportMetric(took.Seconds()/n, "s-to-converge")
			b.ReportMetric(repaired/n, "entries-repaired")
			b.ReportMetric(received/n, "entries-received")
			b.ReportMetric(rounds/n, "syncs")
		})
	}
}

// catchUpResult is what one catch-up measured on the restarted node.
type catchUpResult struct {
	took                       time.Duration
	repaired, received, rounds float64
}

// catchUpOnce runs one catch-up on a fresh three-node cluster, with the
// benchmark timer running only from the restart to convergence.
func catchUpOnce(b *testing.B, interval time.Duration) catchUpResult {
	b.Helper()
	c := newTestCluster(b, 3, func(cfg *Config, ecfg *engine.Config) {
		cfg.AntiEntropyInterval = interval
		ecfg.Sync = wal.SyncNever
	})
	defer func() {
		for i := range c.nodes {
			c.stop(i)
		}
	}()
	c.stop(2)
	// Left, or dead when its leave broadcast timed out on a busy machine.
	waitFor(b, 30*time.Second, "node-2 gone on node-0 and node-1", func() bool {
		for _, tn := range c.nodes[:2] {
			for _, m := range tn.node.Members() {
				if m.Name == "node-2" && m.State == StateAlive {
					return false
				}
			}
		}
		return true
	})
	putMany(b, []*Node{c.nodes[0].node, c.nodes[1].node}, catchUpEntries)
	// The write load can get a peer declared dead; start from a settled pair.
	c.waitAlive(time.Minute, "node-0", "node-1")
	c.waitConverged(2 * time.Minute) // node-0 and node-1 hold every entry

	b.StartTimer()
	start := time.Now()
	c.start(2)
	c.waitConverged(5 * time.Minute)
	took := time.Since(start)
	b.StopTimer()

	m := c.nodes[2].node.metrics
	return catchUpResult{
		took:     took,
		repaired: counterValue(b, m.aeRepaired),
		received: counterValue(b, m.entriesReceived),
		rounds:   counterValue(b, m.syncs.WithLabelValues("ok")),
	}
}

// putMany writes count distinct keys with 100-byte values from
// benchClients goroutines, spread over nodes.
func putMany(b *testing.B, nodes []*Node, count int) {
	b.Helper()
	value := make([]byte, 100)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(count) {
					return
				}
				w := Write{Key: fmt.Sprintf("catch-up-%07d", i), Value: value}
				if _, err := nodes[int(i)%len(nodes)].Put(context.Background(), w); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
