package wal

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// appenders is the number of goroutines BenchmarkAppendParallel runs.
const appenders = 64

// BenchmarkAppendParallel measures group commit: 64 goroutines appending
// 100-byte records. Compare records/s of always with never in one run.
func BenchmarkAppendParallel(b *testing.B) {
	for _, mode := range []SyncMode{SyncAlways, SyncNever} {
		b.Run(mode.String(), func(b *testing.B) {
			var syncs int64
			var synced time.Duration // ObserveSync runs on the writer goroutine only
			l := openLog(b, b.TempDir(), &Options{Sync: mode, ObserveSync: func(d time.Duration) {
				syncs++
				synced += d
			}})
			payload := make([]byte, 100)
			b.SetParallelism((appenders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if err := l.Close(); err != nil { // the writer has stopped: syncs is stable
				b.Fatal(err)
			}
			if mode == SyncAlways && syncs > 0 {
				b.ReportMetric(float64(b.N)/float64(syncs), "records/fsync")
				b.ReportMetric(float64(synced.Microseconds())/float64(syncs), "µs/fsync")
			}
		})
	}
}

// BenchmarkSerialFsync is the baseline: one appender, SyncAlways, so every
// record pays a whole fsync.
func BenchmarkSerialFsync(b *testing.B) {
	l := openLog(b, b.TempDir(), nil)
	payload := make([]byte, 100)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPreallocFsync compares what a write plus fdatasync costs in a
// segment preallocated by fallocate(2), by writing zeros, or not at all.
// doc.go records the choice it led to.
func BenchmarkPreallocFsync(b *testing.B) {
	const segment = 64 << 20
	for _, size := range []int{128, 8 << 10} {
		for _, how := range []string{"none", "fallocate", "zeros"} {
			b.Run(how+"/"+byteSize(size), func(b *testing.B) {
				f, err := os.OpenFile(filepath.Join(b.TempDir(), "seg"), os.O_CREATE|os.O_RDWR, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				switch how {
				case "fallocate":
					err = unix.Fallocate(int(f.Fd()), 0, 0, segment)
				case "zeros":
					err = preallocate(osFile{f}, 0, segment)
				}
				if err == nil {
					err = f.Sync()
				}
				if _, serr := f.Seek(0, io.SeekStart); err == nil {
					err = serr
				}
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				written := 0
				for b.Loop() {
					if written+size > segment {
						b.StopTimer()
						if _, err := f.Seek(0, io.SeekStart); err != nil {
							b.Fatal(err)
						}
						written = 0
						b.StartTimer()
					}
					if _, err := f.Write(buf); err != nil {
						b.Fatal(err)
					}
					written += size
					if err := unix.Fdatasync(int(f.Fd())); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
