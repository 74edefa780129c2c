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

// BenchmarkAntiEntropyRound measures one push/pull comparison between two
// nodes holding the same keys: the state each side sends (bytes/round) and
// the time to build and compare it. Nothing is sent when nothing differs.
func BenchmarkAntiEntropyRound(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			c := newTestCluster(b, 1, func(_ *Config, ecfg *engine.Config) { ecfg.Sync = wal.SyncNever })
			n := c.nodes[0].node
			loadKeys(b, c.nodes[0].eng, keys)
			sent := counterValue(b, n.metrics.batchesSent)
			var size int
			b.ResetTimer()
			for b.Loop() {
				st := n.localState()
				size = len(st)
				peer := encodeState("peer", n.eng.Digests())
				n.mergeState(peer)
			}
			b.ReportMetric(float64(size), "bytes/round")
			if counterValue(b, n.metrics.batchesSent) != sent {
				b.Fatal("identical nodes exchanged entries")
			}
		})
	}
}

// loadKeys applies keys entries straight to eng.
func loadKeys(b *testing.B, eng *engine.Engine, keys int) {
	b.Helper()
	clock := NewClock("loader", nil)
	batch := make([]engine.Entry, 0, 10_000)
	for i := range keys {
		batch = append(batch, engine.Entry{Key: fmt.Sprintf("key-%09d", i), Value: []byte("v"), Version: clock.Version()})
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
// others'. Only anti-entropy can close that gap: the writes were made while
// the node was gone, so no peer queued them for it. The logs never fsync,
// so the figure is the network part. It runs with the test interval and
// with the default one (AntiEntropyInterval).
func BenchmarkCatchUp(b *testing.B) {
	for _, interval := range []time.Duration{300 * time.Millisecond, DefaultConfig().AntiEntropyInterval} {
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
			b.ReportMetric(rounds/n, "ae-rounds")
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
	c.waitState(5*time.Second, "node-2", StateLeft)
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
		rounds:   counterValue(b, m.aeRounds),
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
