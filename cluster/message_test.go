package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/disperse/disperse/engine"
)

func sampleEntries() []engine.Entry {
	return []engine.Entry{
		{Key: "a", Value: []byte("1"), ContentType: "text/plain", ExpiresAt: 99, Version: engine.Version{Time: 5, Node: 1}},
		{Key: "b", Deleted: true, Version: engine.Version{Time: 6, Node: 2}},
		{Key: "c", Value: []byte{}, Version: engine.Version{Time: 7, Node: 3}},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	ents := sampleEntries()
	msg := encodeBatch(header{from: "node-1", wallMS: 1234}, ents)
	if msg[0] != msgBatch {
		t.Fatalf("type byte %d", msg[0])
	}
	h, got, err := decodeBatch(msg[1:])
	if err != nil {
		t.Fatal(err)
	}
	if h.from != "node-1" || h.wallMS != 1234 {
		t.Fatalf("header = %+v", h)
	}
	if len(got) != len(ents) {
		t.Fatalf("%d entries, want %d", len(got), len(ents))
	}
	for i := range ents {
		g, w := got[i], ents[i]
		if g.Key != w.Key || string(g.Value) != string(w.Value) || g.ContentType != w.ContentType ||
			g.ExpiresAt != w.ExpiresAt || g.Version != w.Version || g.Deleted != w.Deleted {
			t.Fatalf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestBatchTruncatedIsError(t *testing.T) {
	msg := encodeBatch(header{from: "n"}, sampleEntries())[1:]
	for cut := range len(msg) {
		if _, _, err := decodeBatch(msg[:cut]); !errors.Is(err, ErrMessage) {
			t.Fatalf("cut at %d of %d: err = %v, want ErrMessage", cut, len(msg), err)
		}
	}
}

func TestSyncBodiesRoundTrip(t *testing.T) {
	from, level, idx, err := decodeIndices(encodeIndices("me", 3, []int{0, 7, 4095}))
	if err != nil || from != "me" || level != 3 || !slices.Equal(idx, []int{0, 7, 4095}) {
		t.Fatalf("indices: %q %d %v %v", from, level, idx, err)
	}
	if _, _, _, err := decodeIndices(encodeIndices("me", 2, []int{256})); !errors.Is(err, ErrMessage) {
		t.Fatalf("an index beyond its level: err = %v", err)
	}
	if _, _, _, err := decodeIndices(encodeIndices("me", treeLevels+1, nil)); !errors.Is(err, ErrMessage) {
		t.Fatalf("a level beyond the leaves: err = %v", err)
	}

	leaves := [][]slotRef{{{1, engine.Version{Time: 2, Node: 3}}}, nil, {{4, engine.Version{Time: 5}}, {6, engine.Version{Node: 7}}}}
	got, err := decodeLeaves(encodeLeaves(leaves), 3)
	if err != nil || len(got) != 3 || len(got[1]) != 0 || got[2][1] != leaves[2][1] || got[0][0] != leaves[0][0] {
		t.Fatalf("leaves: %v %v", got, err)
	}
	if _, err := decodeLeaves(encodeLeaves(leaves), 2); !errors.Is(err, ErrMessage) {
		t.Fatalf("a leaf more than asked for: err = %v", err)
	}

	want := map[int][]uint64{9: {1, 2}, engine.Leaves - 1: {3}}
	from, w, err := decodeWant(encodeWant("me", want))
	if err != nil || from != "me" || len(w) != 2 || !slices.Equal(w[9], []uint64{1, 2}) || !slices.Equal(w[engine.Leaves-1], []uint64{3}) {
		t.Fatalf("want: %q %v %v", from, w, err)
	}
}

func TestHostileCountsAllocateNothing(t *testing.T) {
	// A count far beyond the bytes that follow is refused before any
	// allocation it would decide.
	b := appendHeader(nil, header{from: "x"})
	b = append(b, 2, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, _, _, err := decodeIndices(b); !errors.Is(err, ErrMessage) {
		t.Fatalf("indices: err = %v", err)
	}
	if _, err := decodeLeaves([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1); !errors.Is(err, ErrMessage) {
		t.Fatalf("leaves: err = %v", err)
	}
	w := appendHeader(nil, header{from: "x"})
	w = append(w, 1, 5, 0xff, 0xff, 0xff, 0x0f)
	if _, _, err := decodeWant(w); !errors.Is(err, ErrMessage) {
		t.Fatalf("want: err = %v", err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch(header{from: "n", wallMS: 1}, sampleEntries())[1:])
	f.Add([]byte{})
	f.Add([]byte{1, 'n', 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ents, err := decodeBatch(b)
		if err != nil {
			return
		}
		_, again, err := decodeBatch(encodeBatch(h, ents)[1:])
		if err != nil || len(again) != len(ents) {
			t.Fatalf("re-encoding a decoded batch: %v", err)
		}
	})
}

func FuzzDecodeSyncBodies(f *testing.F) {
	f.Add(encodeIndices("n", 2, []int{1, 2}))
	f.Add(encodeWant("n", map[int][]uint64{1: {2}}))
	f.Add(encodeLeaves([][]slotRef{{{1, engine.Version{Time: 1}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeIndices(b)
		decodeWant(b)
		decodeLeaves(b, len(b)%4)
	})
}

// TestReadFramesAllocatesWhatArrives: a frame's declared length decides
// no allocation: one above the limit is refused at once, and one within
// it that is cut short costs what arrived.
func TestReadFramesAllocatesWhatArrives(t *testing.T) {
	const limit = 64 << 20
	frame := func(declared uint64, body int) []byte {
		b := binary.AppendUvarint(nil, declared)
		return append(b, make([]byte, body)...)
	}
	none := func([]engine.Entry) error { t.Fatal("a batch was handed out"); return nil }
	if err := readFrames(bytes.NewReader(frame(1<<30, 16)), limit, none); !errors.Is(err, ErrMessage) {
		t.Fatalf("a frame declaring 1 GiB: %v, want ErrMessage", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := readFrames(bytes.NewReader(frame(limit-1, 16)), limit, none); !errors.Is(err, ErrMessage) {
		t.Fatalf("a frame cut short: %v, want ErrMessage", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("a 16-byte frame declaring %d MiB allocated %d KiB", limit>>20, grew>>10)
	}
}
