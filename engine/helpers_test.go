package engine

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/disperse/disperse/wal"
)

// testConfig is a Config for dir with small segments and no background
// snapshots unless a test asks for them.
func testConfig(dir string) Config {
	return Config{
		Dir:              dir,
		Sync:             wal.SyncNever,
		SegmentBytes:     1 << 20,
		SnapshotInterval: time.Hour,
		SnapshotWALBytes: 1 << 40,
	}
}

func openTest(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	e, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open(%s): %v", cfg.Dir, err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

func mustApply(tb testing.TB, e *Engine, ents ...Entry) int {
	tb.Helper()
	n, err := e.ApplyBatch(ents)
	if err != nil {
		tb.Fatalf("ApplyBatch: %v", err)
	}
	return n
}

// futureMillis is 2100-01-01 in Unix milliseconds: versions built by ver
// lie after it, so their tombstones are never old enough to collect.
const futureMillis = 4102444800000

// ver builds a version from a wall-clock offset in milliseconds (after
// futureMillis), a counter and a node id.
func ver(ms int64, counter uint16, node uint64) Version {
	return Version{Time: uint64(futureMillis+ms)<<16 | uint64(counter), Node: node}
}

// nowVer is a version stamped now.
func nowVer(counter uint16, node uint64) Version {
	return Version{Time: uint64(time.Now().UnixMilli())<<16 | uint64(counter), Node: node}
}

func put(key, value string, v Version) Entry {
	return Entry{Key: key, Value: []byte(value), ContentType: "text/plain", Version: v}
}

func del(key string, v Version) Entry {
	return Entry{Key: key, Version: v, Deleted: true}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashCopy copies dir as it is on disk now, as a crash would leave it
// (without the final snapshot Close writes), and returns the copy.
func crashCopy(tb testing.TB, dir string) string {
	tb.Helper()
	dst := tb.TempDir()
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		tb.Fatalf("copy %s: %v", dir, err)
	}
	return dst
}

func getValue(tb testing.TB, e *Engine, key string) (string, bool) {
	tb.Helper()
	ent, ok := e.Get(key)
	return string(ent.Value), ok
}
