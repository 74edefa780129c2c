package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/reedsolomon"
)

// nopHash is a hash.Hash that does nothing, to time coding without sha256.
type nopHash struct{ hash.Hash }

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkEncode times the coding step of one default stripe (4+2, 1 MiB
// blocks): reedsolomon's own Encode on ready shards, the store's stripe
// step (read, split, encode), and that step with the sha256 of the blob
// and the CRC-32C block headers the upload adds.
func BenchmarkEncode(b *testing.B) {
	const k, m, bs = 4, 2, DefaultShardBlock
	enc, err := reedsolomon.New(k, m)
	if err != nil {
		b.Fatal(err)
	}
	data := randomBytes(k*bs, 1)
	b.Run("reedsolomon", func(b *testing.B) {
		shards := make([][]byte, k+m)
		for i := range shards {
			shards[i] = make([]byte, bs)
			if i < k {
				copy(shards[i], data[i*bs:])
			}
		}
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := enc.Encode(shards); err != nil {
				b.Fatal(err)
			}
		}
	})
	stripe := func(h hash.Hash, crc bool) func(b *testing.B) {
		return func(b *testing.B) {
			sb := newStripeBufs(k, m, bs)
			r := bytes.NewReader(data)
			var hdr [blockHeaderLen]byte
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				r.Reset(data)
				if _, _, err := sb.fill(r, h, enc, k, bs); err != nil {
					b.Fatal(err)
				}
				if crc {
					for _, sh := range sb.shards {
						putBlockHeader(hdr[:], 0, sh)
					}
				}
			}
		}
	}
	b.Run("stripe", stripe(nopHash{}, false))
	b.Run("stripe+crc", stripe(nopHash{}, true))
	b.Run("stripe+sha256+crc", stripe(sha256.New(), true))
}

// BenchmarkPutGet stores and reads back a 64 MiB blob, 4+2 on six nodes
// over loopback HTTP, default stripe size.
func BenchmarkPutGet(b *testing.B) {
	c := newTestCluster(b, 6, func(cfg *Config) { cfg.StripeBytes = 0 })
	data := randomBytes(64<<20, 2)
	st, reader := c.nodes[0].store, c.nodes[3].store
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := st.Put(context.Background(), "bench", bytes.NewReader(data), PutOptions{}); err != nil {
			b.Fatal(err)
		}
		readBack(b, reader, "bench", len(data))
	}
}

// readBack reads blob id whole from st into io.Discard and checks its
// length.
func readBack(b *testing.B, st *Store, id string, size int) {
	b.Helper()
	_, rc, err := st.Open(context.Background(), id, 0, -1)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != int64(size) {
		b.Fatalf("read %d bytes: %v", n, err)
	}
}

// BenchmarkGetWhileScrubbing reads a 64 MiB blob (4+2 on six nodes, over
// loopback HTTP, default stripe) with no scrubber running, then while
// every node scrubs without a pause at the default rate (the worst case:
// a pass normally runs once a day), alternated within each iteration.
// scrubbing/idle is the ratio of the two read speeds.
func BenchmarkGetWhileScrubbing(b *testing.B) {
	c := newTestCluster(b, 6, func(cfg *Config) { cfg.StripeBytes = 0 })
	data := randomBytes(64<<20, 3)
	mustPut(b, c.nodes[0].store, "scrubbed", data, PutOptions{})
	reader := c.nodes[3].store
	read := func() time.Duration {
		t0 := time.Now()
		readBack(b, reader, "scrubbed", len(data))
		return time.Since(t0)
	}
	var idle, scrubbing time.Duration
	var scrubbed int64
	for b.Loop() {
		idle += read()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, nd := range c.nodes {
			wg.Go(func() {
				for ctx.Err() == nil {
					_ = nd.store.ScrubOnce(ctx)
				}
			})
		}
		before := scrubBytes(b, c)
		scrubbing += read()
		scrubbed += scrubBytes(b, c) - before
		cancel()
		wg.Wait()
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(len(data)) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(idle), "MB/s-idle")
	b.ReportMetric(mbps(scrubbing), "MB/s-scrubbing")
	b.ReportMetric(idle.Seconds()/scrubbing.Seconds(), "scrubbing/idle")
	b.ReportMetric(float64(scrubbed)/scrubbing.Seconds()/(1<<20), "scrub-MiB/s")
}

// scrubBytes sums what the nodes' scrubbers have read.
func scrubBytes(b *testing.B, c *testCluster) int64 {
	var n float64
	for _, nd := range c.nodes {
		n += counterValue(b, nd.store.met.scrubBytes)
	}
	return int64(n)
}
