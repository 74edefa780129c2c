package engine

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/engine")

// goldenDir holds encoded fixtures; a change of the encoding must be a
// deliberate one (go test ./engine -run Golden -args -update).
var goldenDir = filepath.Join("..", "testdata", "engine")

func TestEntriesGolden(t *testing.T) {
	path := filepath.Join(goldenDir, "entries-v1.bin")
	enc := AppendEntries(nil, codecSamples)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding of the samples differs from %s", path)
	}
	got, err := DecodeEntries(want)
	if err != nil || !reflect.DeepEqual(got, codecSamples) {
		t.Fatalf("decoding %s: %v", path, err)
	}
	// Every cut of the fixture is rejected, never a panic.
	for n := 0; n < len(want); n++ {
		if _, err := DecodeEntries(want[:n]); err == nil {
			t.Fatalf("a %d-byte prefix of %s decoded", n, path)
		}
	}
}
