package cluster

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/disperse/disperse/engine"
)

func sampleEntries() []engine.Entry {
	return []engine.Entry{
		{Key: "a", Value: []byte("value"), ContentType: "text/plain", ExpiresAt: 1234567890123, Version: engine.Version{Time: 1 << 40, Node: 9}},
		{Key: "b/c", Deleted: true, Version: engine.Version{Time: 77, Node: ^uint64(0)}},
		{Key: "", Value: nil, ExpiresAt: -1},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	ents := sampleEntries()
	msg := encodeBatch(msgBatch, ents)
	if msg[0] != msgBatch {
		t.Fatalf("type byte %d", msg[0])
	}
	got, err := decodeBatch(msg[1:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ents) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, ents)
	}
	for i := range ents {
		if n := len(appendEntry(nil, &ents[i])); n > entrySize(&ents[i]) {
			t.Fatalf("entry %d encodes to %d bytes, entrySize says %d", i, n, entrySize(&ents[i]))
		}
	}
}

func TestBatchTruncatedIsError(t *testing.T) {
	msg := encodeBatch(msgBatch, sampleEntries())[1:]
	for n := range len(msg) {
		if _, err := decodeBatch(msg[:n]); !errors.Is(err, ErrMessage) {
			t.Fatalf("batch cut to %d of %d bytes: err = %v, want ErrMessage", n, len(msg), err)
		}
	}
	if _, err := decodeBatch(append(slices.Clone(msg), 0)); !errors.Is(err, ErrMessage) {
		t.Fatalf("trailing byte: err = %v, want ErrMessage", err)
	}
}

func TestRequestAndStateRoundTrip(t *testing.T) {
	from, buckets, err := decodeRequest(encodeRequest("node-1", []int{0, 5, engine.Buckets - 1})[1:])
	if err != nil || from != "node-1" || !slices.Equal(buckets, []int{0, 5, engine.Buckets - 1}) {
		t.Fatalf("request round trip: %q %v %v", from, buckets, err)
	}
	if _, _, err := decodeRequest(encodeRequest("x", []int{engine.Buckets})[1:]); !errors.Is(err, ErrMessage) {
		t.Fatalf("bucket out of range: err = %v", err)
	}
	digests := make([]uint64, engine.Buckets)
	for i := range digests {
		digests[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	st := encodeState("node-2", digests)
	name, got, err := decodeState(st)
	if err != nil || name != "node-2" || !slices.Equal(got, digests) {
		t.Fatalf("state round trip: %q %v", name, err)
	}
	if _, _, err := decodeState(st[:len(st)-1]); !errors.Is(err, ErrMessage) {
		t.Fatalf("short state: err = %v", err)
	}
	if diff := differing(digests, got); len(diff) != 0 {
		t.Fatalf("identical digests differ in %v", diff)
	}
	got[3]++
	got[700]++
	if diff := differing(digests, got); !slices.Equal(diff, []int{3, 700}) {
		t.Fatalf("differing = %v, want [3 700]", diff)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch(msgBatch, sampleEntries())[1:])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ents, err := decodeBatch(b)
		if err != nil {
			return
		}
		again, err := decodeBatch(encodeBatch(msgBatch, ents)[1:])
		if err != nil || len(again) != len(ents) {
			t.Fatalf("re-encoding a decoded batch: %v", err)
		}
	})
}
