package wal

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the log fixtures under testdata/wal")

// Fixture logs under testdata/wal, made by TestFixtures -update:
// clean is fixtureRecords records in fixtureSegment-byte segments; torn is
// clean with its last segment cut short inside the last record; flipped is
// clean with one payload byte flipped in a middle record of the last
// segment.
const (
	fixtureDir     = "../testdata/wal"
	fixtureRecords = 20
	fixtureSegment = 512
)

func fixturePath(name string) string { return filepath.Join(fixtureDir, name) }

// makeFixtures writes the three fixture logs under root.
func makeFixtures(tb testing.TB, root string) {
	tb.Helper()
	clean := filepath.Join(root, "clean")
	if err := os.RemoveAll(clean); err != nil {
		tb.Fatal(err)
	}
	l, err := Open(clean, &Options{SegmentBytes: fixtureSegment, Sync: SyncNever})
	if err != nil {
		tb.Fatal(err)
	}
	appendN(tb, l, 0, fixtureRecords, 1)
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	names := segmentFiles(tb, clean)
	last := names[len(names)-1]
	offs, sizes := records(tb, filepath.Join(clean, last))
	if len(offs) < 3 {
		tb.Fatalf("last fixture segment has %d records, want 3+", len(offs))
	}
	k := len(offs) - 1
	for _, v := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"torn", func(b []byte) []byte { return b[:offs[k]+sizes[k]/2] }},
		{"flipped", func(b []byte) []byte { b[offs[k/2]+headerSize+2] ^= 0x40; return b }},
	} {
		dir := filepath.Join(root, v.name)
		if err := os.RemoveAll(dir); err != nil {
			tb.Fatal(err)
		}
		src := copyDir(tb, clean)
		b, err := os.ReadFile(filepath.Join(src, last))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, last), v.edit(b), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(src, dir); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestFixtures checks that the committed fixtures are exactly what the
// encoder writes today (the format has not drifted), or rewrites them
// with -update.
func TestFixtures(t *testing.T) {
	if *update {
		if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
			t.Fatal(err)
		}
		makeFixtures(t, fixtureDir)
	}
	fresh := t.TempDir()
	makeFixtures(t, fresh)
	for _, name := range []string{"clean", "torn", "flipped"} {
		want, err := os.ReadDir(filepath.Join(fresh, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadDir(fixturePath(name))
		if err != nil {
			t.Fatalf("%v (run go test ./wal -run TestFixtures -update)", err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d files, want %d", name, len(got), len(want))
		}
		for _, e := range want {
			a, _ := os.ReadFile(filepath.Join(fresh, name, e.Name()))
			b, err := os.ReadFile(filepath.Join(fixturePath(name), e.Name()))
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("%s/%s differs from what the encoder writes (err %v)", name, e.Name(), err)
			}
		}
	}
}

func TestFixtureClean(t *testing.T) {
	l := openLog(t, copyDir(t, fixturePath("clean")), &Options{SegmentBytes: 4096})
	got := replayAll(t, l, 0)
	if len(got) != fixtureRecords || l.Recovery().TornBytes != 0 {
		t.Fatalf("clean fixture: %d records, recovery %+v", len(got), l.Recovery())
	}
	for i := range fixtureRecords {
		if !bytes.Equal(got[uint64(i+1)], payloadFor(i)) {
			t.Fatalf("record %d = %q", i+1, got[uint64(i+1)])
		}
	}
}

func TestFixtureTorn(t *testing.T) {
	dir := copyDir(t, fixturePath("torn"))
	names := segmentFiles(t, dir)
	last := filepath.Join(dir, names[len(names)-1])
	clean := filepath.Join(fixturePath("clean"), names[len(names)-1])
	offs, sizes := records(t, clean)
	k := len(offs) - 1
	checkTornRecovery(t, dir, last, offs[k], sizes[k]-sizes[k]/2, fixtureRecords-1)
}

// checkTornRecovery opens dir, whose last segment last has a torn record
// at off, and checks: records before it replay, the file is cut back to
// zeros from off, and appends continue with the next sequence number.
func checkTornRecovery(t *testing.T, dir, last string, off, wantCut int64, intact int) {
	t.Helper()
	var logged bytes.Buffer
	opts := &Options{SegmentBytes: fixtureSegment, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	l := openLog(t, dir, opts)
	if lines := strings.Split(strings.TrimSpace(logged.String()), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], "file="+last) || !strings.Contains(lines[0], "bytes=") {
		t.Fatalf("want one log line naming %s and the bytes cut, got %q", last, logged.String())
	}
	rec := l.Recovery()
	if rec.Records != int64(intact) || rec.LastSeq != uint64(intact) || rec.TornFile != last || (wantCut >= 0 && rec.TornBytes != wantCut) {
		t.Fatalf("Recovery = %+v; want %d records, %d bytes cut from %s", rec, intact, wantCut, last)
	}
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) < fixtureSegment || !allZero(b[off:]) {
		t.Fatalf("after the cut %s has %d bytes, zero from %d: %v", last, len(b), off, allZero(b[off:]))
	}
	if seq, err := l.Append([]byte("after the tear")); err != nil || seq != uint64(intact+1) {
		t.Fatalf("Append after recovery = %d, %v; want %d", seq, err, intact+1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	got := replayAll(t, l, 0)
	if len(got) != intact+1 || string(got[uint64(intact+1)]) != "after the tear" || l.Recovery().TornBytes != 0 {
		t.Fatalf("after reopen: %d records, last %q, recovery %+v", len(got), got[uint64(intact+1)], l.Recovery())
	}
	for i := range intact {
		if !bytes.Equal(got[uint64(i+1)], payloadFor(i)) {
			t.Fatalf("record %d = %q", i+1, got[uint64(i+1)])
		}
	}
}

// TestTornAtEveryOffset cuts the clean log at every offset inside its last
// record, both by truncating the file and by zeroing the rest of it.
func TestTornAtEveryOffset(t *testing.T) {
	names := segmentFiles(t, fixturePath("clean"))
	lastName := names[len(names)-1]
	offs, sizes := records(t, filepath.Join(fixturePath("clean"), lastName))
	k := len(offs) - 1
	off, size := offs[k], sizes[k]
	payloadEnd := off + headerSize + int64(len(payloadFor(fixtureRecords-1)))
	for cut := off; cut < off+size; cut++ {
		for _, mode := range []string{"truncate", "zero"} {
			t.Run(fmt.Sprintf("%s-%d", mode, cut-off), func(t *testing.T) {
				dir := copyDir(t, fixturePath("clean"))
				last := filepath.Join(dir, lastName)
				b, err := os.ReadFile(last)
				if err != nil {
					t.Fatal(err)
				}
				if mode == "truncate" {
					b = b[:cut]
				} else {
					clear(b[cut:])
				}
				if err := os.WriteFile(last, b, 0o644); err != nil {
					t.Fatal(err)
				}
				switch {
				case cut == off:
					// Nothing of the record is left: a clean end, not a tear.
					l := openLog(t, dir, &Options{SegmentBytes: 4096})
					if r := l.Recovery(); r.Records != fixtureRecords-1 || r.TornBytes != 0 {
						t.Fatalf("Recovery = %+v", r)
					}
				case mode == "zero" && cut >= payloadEnd:
					// Only padding zeroed: the record is intact.
					l := openLog(t, dir, &Options{SegmentBytes: 4096})
					if r := l.Recovery(); r.Records != fixtureRecords || r.TornBytes != 0 {
						t.Fatalf("Recovery = %+v", r)
					}
				default:
					checkTornRecovery(t, dir, last, off, -1, fixtureRecords-1)
				}
			})
		}
	}
}

func TestFixtureFlipped(t *testing.T) {
	dir := copyDir(t, fixturePath("flipped"))
	names := segmentFiles(t, dir)
	lastName := names[len(names)-1]
	offs, _ := records(t, filepath.Join(fixturePath("clean"), lastName))
	bad := offs[(len(offs)-1)/2]
	_, err := Open(dir, &Options{SegmentBytes: 4096})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a log with a flipped byte: %v, want ErrCorrupt", err)
	}
	if msg := err.Error(); !strings.Contains(msg, lastName) || !strings.Contains(msg, fmt.Sprintf("offset %d:", bad)) {
		t.Fatalf("error %q does not name %s and offset %d", msg, lastName, bad)
	}
}

// TestBadRecordInEarlierSegment: the last record of a segment that is not
// the last is damaged and followed by zeros; that is not a torn tail.
func TestBadRecordInEarlierSegment(t *testing.T) {
	dir := copyDir(t, fixturePath("clean"))
	names := segmentFiles(t, dir)
	first := filepath.Join(dir, names[0])
	offs, _ := records(t, first)
	bad := offs[len(offs)-1]
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[bad+headerSize:])
	if err := os.WriteFile(first, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, &Options{SegmentBytes: 4096})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), names[0]) ||
		!strings.Contains(err.Error(), fmt.Sprintf("offset %d:", bad)) {
		t.Fatalf("Open: %v; want ErrCorrupt naming %s at offset %d", err, names[0], bad)
	}
}
