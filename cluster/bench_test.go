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
