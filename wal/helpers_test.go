package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// openLog opens the log in dir and closes it at the end of the test if
// the test did not.
func openLog(tb testing.TB, dir string, opts *Options) *Log {
	tb.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// payloadFor is the deterministic payload of record i: its length varies
// so that every padding count occurs.
func payloadFor(i int) []byte {
	return []byte(fmt.Sprintf("record-%d-%s", i, bytes.Repeat([]byte{'x'}, i%13)))
}

// appendN appends payloadFor(from..from+n-1) one by one and checks the
// sequence numbers run on from wantSeq.
func appendN(tb testing.TB, l *Log, from, n int, wantSeq uint64) {
	tb.Helper()
	for i := range n {
		seq, err := l.Append(payloadFor(from + i))
		if err != nil {
			tb.Fatalf("Append %d: %v", from+i, err)
		}
		if seq != wantSeq+uint64(i) {
			tb.Fatalf("Append %d: seq %d, want %d", from+i, seq, wantSeq+uint64(i))
		}
	}
}

// replayAll returns every record after after, as seq -> payload copies,
// and checks they come in dense order.
func replayAll(tb testing.TB, l *Log, after uint64) map[uint64][]byte {
	tb.Helper()
	got := map[uint64][]byte{}
	next := after + 1
	err := l.Replay(after, func(seq uint64, p []byte) error {
		if seq != next {
			return fmt.Errorf("replay gave seq %d, want %d", seq, next)
		}
		next++
		got[seq] = bytes.Clone(p)
		return nil
	})
	if err != nil {
		tb.Fatalf("Replay(%d): %v", after, err)
	}
	return got
}

// segmentFiles lists the segment file names in dir, oldest first.
func segmentFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	segs, err := listSegments(osFS{}, dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, s := range segs {
		names = append(names, filepath.Base(s.path))
	}
	return names
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

// records returns the offsets and sizes of the records in a segment file.
func records(tb testing.TB, path string) (offs, sizes []int64) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	tab := castagnoli()
	for off := int64(0); ; {
		_, _, n, err := decodeRecord(tab, b[off:])
		if err != nil {
			return offs, sizes
		}
		offs, sizes = append(offs, off), append(sizes, n)
		off += n
	}
}
