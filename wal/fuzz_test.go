package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder. It must
// never panic; whatever it accepts must be exactly what the encoder writes
// for that sequence number and payload, and flipping any bit of an
// accepted record must make it fail. The seed corpus is every record of
// the fixture logs, plus their damaged tails.
func FuzzDecodeRecord(f *testing.F) {
	for _, name := range []string{"clean", "torn", "flipped"} {
		dir := fixturePath(name)
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint(0))
			offs, sizes := records(f, filepath.Join(dir, e.Name()))
			for i, off := range offs {
				f.Add(b[off:off+sizes[i]], uint(off))
				f.Add(b[off:], uint(i))
			}
		}
	}
	f.Add([]byte{}, uint(0))
	tab := castagnoli()
	f.Fuzz(func(t *testing.T, b []byte, bit uint) {
		seq, payload, n, err := decodeRecord(tab, b)
		if err != nil {
			if !isDecodeError(err) && !errors.Is(err, errEndOfData) {
				t.Fatalf("decode error of an unknown kind: %v", err)
			}
			return
		}
		if n < headerSize || n > int64(len(b)) || n%8 != 0 {
			t.Fatalf("accepted a record of %d bytes from %d", n, len(b))
		}
		want := appendRecord(nil, tab, seq, payload)
		if !bytes.Equal(want, b[:n]) {
			t.Fatalf("accepted bytes the encoder does not write:\n got %x\nwant %x", b[:n], want)
		}
		damaged := bytes.Clone(b[:n])
		i := bit % uint(n*8)
		damaged[i/8] ^= 1 << (i % 8)
		if _, _, _, err := decodeRecord(tab, damaged); err == nil {
			t.Fatalf("accepted a record with bit %d flipped", i)
		}
	})
}
