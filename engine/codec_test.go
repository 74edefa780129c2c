package engine

import (
	"errors"
	"reflect"
	"testing"
)

var codecSamples = []Entry{
	{Key: "k", Value: []byte("v"), ContentType: "text/plain", ExpiresAt: 1700000000000000000,
		Version: Version{Time: 1 << 40, Node: 7}},
	{Key: "gone", Version: Version{Time: 3, Node: 1}, Deleted: true},
	{Key: "mine", Value: []byte{0, 1, 2}, Version: Version{Time: 9}, Local: true, ExpiresAt: -5},
	{Key: "\x00blob/manifest", Value: make([]byte, 300), Version: Version{Time: ^uint64(0), Node: ^uint64(0)}},
}

// TestEvictedRoundTrip: an eviction stub (or a logged eviction) keeps its
// key, version and expiry; the golden fixture of the older samples still
// decodes as before.
func TestEvictedRoundTrip(t *testing.T) {
	want := []Entry{{Key: "evicted", Version: Version{Time: 11, Node: 2}, ExpiresAt: 1700000000000000000, Evicted: true}}
	got, err := DecodeEntries(AppendEntries(nil, want))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestEntriesRoundTrip(t *testing.T) {
	p := AppendEntries(nil, codecSamples)
	got, err := DecodeEntries(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, codecSamples) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, codecSamples)
	}
	// Decoded entries own their memory.
	for i := range p {
		p[i] = 0xAA
	}
	if !reflect.DeepEqual(got, codecSamples) {
		t.Fatal("decoded entries alias the input")
	}
	if got, err := DecodeEntries(AppendEntries(nil, nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty batch: %v %v", got, err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	good := AppendEntries(nil, codecSamples)
	cases := map[string][]byte{
		"empty":          nil,
		"bad version":    append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"huge count":     {codecVersion, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"unknown flag":   {codecVersion, 1, 0x80, 1, 'k', 0, 0},
		"key too long":   {codecVersion, 1, 0, 50, 'k', 0, 0},
		"empty value":    {codecVersion, 1, flagValue, 1, 'k', 0, 0, 0},
		"zero expiry":    {codecVersion, 1, flagExpiry, 1, 'k', 0, 0, 0},
		"evicted value":  {codecVersion, 1, flagEvicted | flagValue, 1, 'k', 0, 0, 1, 'v'},
		"evicted delete": {codecVersion, 1, flagEvicted | flagDeleted, 1, 'k', 0, 0},
		"evicted local":  {codecVersion, 1, flagEvicted | flagLocal, 1, 'k', 0, 0},
	}
	for name, p := range cases {
		if _, err := DecodeEntries(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(AppendEntries(nil, codecSamples))
	f.Add(AppendEntries(nil, codecSamples[1:2]))
	f.Add(appendEntries(nil, codecSamples[:1], false))
	f.Add([]byte{codecVersion, 0})
	f.Add([]byte{codecVersion, 1, 0x1f, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		ents, err := DecodeEntries(p)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// What decodes survives a round trip unchanged.
		again, err := DecodeEntries(AppendEntries(nil, ents))
		if err != nil || !reflect.DeepEqual(again, ents) {
			t.Fatalf("round trip of %x: %+v, %v; want %+v", p, again, err, ents)
		}
	})
}

func TestEncodingMatchesDoc(t *testing.T) {
	got := AppendEntries(nil, []Entry{{Key: "k", Value: []byte("v"), Version: Version{Time: 5, Node: 1}}})
	want := []byte{0x01, 0x01, 0x10, 0x01, 0x6b, 0x05, 0x01, 0x01, 0x76}
	if string(got) != string(want) {
		t.Fatalf("encoding % x, want % x (doc.go)", got, want)
	}
}
