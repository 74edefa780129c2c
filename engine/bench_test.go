package engine

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/wal"
)

func benchEngine(b *testing.B, sync wal.SyncMode) *Engine {
	b.Helper()
	cfg := testConfig(b.TempDir())
	cfg.Sync = sync
	cfg.SegmentBytes = 64 << 20
	return openTest(b, cfg)
}

func BenchmarkApplyParallel(b *testing.B) {
	for _, mode := range []wal.SyncMode{wal.SyncNever, wal.SyncAlways} {
		b.Run(mode.String(), func(b *testing.B) {
			e := benchEngine(b, mode)
			value := make([]byte, 100)
			var n atomic.Uint64
			b.SetBytes(int64(len(value)))
			b.SetParallelism(16) // concurrent writers share fsyncs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					ent := Entry{Key: fmt.Sprintf("key-%012d", i%100000), Value: value, Version: Version{Time: i, Node: 1}}
					if _, err := e.Apply(ent); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGet reads 100,000 keys of 100 bytes from 2 goroutines per
// core: unbounded, and bounded (at the bound, reads set SIEVE's visited
// bit).
func BenchmarkGet(b *testing.B) {
	b.Run("unbounded", func(b *testing.B) { benchGet(b, benchEngine(b, wal.SyncNever)) })
	b.Run("bounded", func(b *testing.B) {
		cfg := testConfig(b.TempDir())
		cfg.MaxMemory = MinMaxMemory
		benchGet(b, openTest(b, cfg))
	})
}

func benchGet(b *testing.B, e *Engine) {
	const keys = 30000 // they fit the bounded engine's budget
	value := make([]byte, 100)
	batch := make([]Entry, 0, 1000)
	for i := 0; i < keys; i++ {
		batch = append(batch, Entry{Key: fmt.Sprintf("key-%012d", i), Value: value, Version: Version{Time: 1, Node: 1}})
		if len(batch) == cap(batch) {
			mustApply(b, e, batch...)
			batch = batch[:0]
		}
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%012d", i)
	}
	var n atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := e.Get(names[n.Add(1)%keys]); !ok {
				b.Error("missing key")
				return
			}
		}
	})
}

// BenchmarkRecovery1M builds 1,000,000 keys of 100-byte values, snapshots
// them, adds a 100,000-record log tail and closes without a last snapshot;
// then it times Open and reports the heap in use after it against the raw
// key and value bytes. Run it with -benchtime=1x.
func BenchmarkRecovery1M(b *testing.B) {
	const keys, tail = 1_000_000, 100_000
	dir := b.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentBytes = 64 << 20
	e, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	raw := int64(0)
	batch := make([]Entry, 0, 1000)
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("key-%012d", i) // 16 bytes
		raw += int64(len(k) + len(value))
		batch = append(batch, Entry{Key: k, Value: value, ContentType: "application/octet-stream", Version: Version{Time: 1 << 16, Node: 1}})
		if len(batch) == cap(batch) {
			mustApply(b, e, batch...)
			batch = batch[:0]
		}
	}
	if err := e.Snapshot(); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < tail; i++ { // one record each, half overwrites, half new keys
		k := fmt.Sprintf("key-%012d", i*10)
		if i%2 == 1 {
			k = fmt.Sprintf("new-%012d", i)
			raw += int64(len(k) + len(value))
		}
		mustApply(b, e, Entry{Key: k, Value: value, Version: Version{Time: 2 << 16, Node: 1}})
	}
	crashDir := crashCopy(b, dir) // the state a crash would leave: snapshot plus tail
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	e = nil
	runtime.GC()
	runtime.GC() // the second cycle drops pools (and what they pin) of the closed engine
	debug.FreeOSMemory()
	anonBefore, fileBefore := residentBytes(b)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start, cpu := time.Now(), cpuTime()
		r, err := Open(testConfig(crashDir))
		took, cpuTook := time.Since(start), cpuTime()-cpu
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if st := r.Stats(); st.Keys != keys+tail/2 {
			b.Fatalf("recovered %d keys", st.Keys)
		}
		rec := r.Recovery()
		b.ReportMetric(float64(took.Milliseconds()), "open-ms")
		b.ReportMetric(float64(cpuTook.Milliseconds()), "open-cpu-ms")
		b.ReportMetric(float64(ms.HeapInuse)/float64(raw), "heap/raw")
		debug.FreeOSMemory()
		anon, file := residentBytes(b)
		b.ReportMetric(float64(anon-anonBefore)/float64(raw), "anon-rss-added/raw")
		b.ReportMetric(float64(file-fileBefore)/(1<<20), "file-rss-added-MiB")
		b.ReportMetric(float64(rec.LogRecords), "log-records")
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// residentBytes reads the process's resident memory: anonymous (heap,
// stacks) and file-backed (here the snapshot file bbolt maps, clean pages
// the kernel can drop at will), from /proc/self/status.
func residentBytes(b *testing.B) (anon, file int64) {
	b.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	found := 0
	for _, line := range strings.Split(string(status), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "RssAnon" && name != "RssFile") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			b.Fatalf("%s: %v", line, err)
		}
		if name == "RssAnon" {
			anon = kb << 10
		} else {
			file = kb << 10
		}
		found++
	}
	if found != 2 {
		b.Fatal("no RssAnon and RssFile in /proc/self/status")
	}
	return anon, file
}

// cpuTime is the process's user plus system CPU time: on a shared machine
// it says more about Open than the wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
