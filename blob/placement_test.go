package blob

import (
	"bytes"
	"fmt"
	"testing"
)

func peers(n int) []Peer {
	out := make([]Peer, n)
	for i := range out {
		out[i] = Peer{Name: fmt.Sprintf("n%d", i)}
	}
	return out
}

func TestPlaceDistinctAndStable(t *testing.T) {
	ps := peers(8)
	firsts := map[string]int{}
	for i := range 200 {
		id := fmt.Sprintf("blob%d", i)
		h := place(id, ps, 6)
		seen := map[string]bool{}
		for _, p := range h {
			if seen[p.Name] {
				t.Fatalf("%s: two shards on %s", id, p.Name)
			}
			seen[p.Name] = true
		}
		// The same members in another order give the same placement.
		rev := make([]Peer, len(ps))
		for j, p := range ps {
			rev[len(ps)-1-j] = p
		}
		if h2 := place(id, rev, 6); fmt.Sprint(h2) != fmt.Sprint(h) {
			t.Fatalf("%s: placement depends on member order", id)
		}
		// Removing a node that holds nothing keeps the placement.
		var rest []Peer
		for _, p := range ps {
			if p.Name != rank(id, ps)[7].Name {
				rest = append(rest, p)
			}
		}
		if h3 := place(id, rest, 6); fmt.Sprint(h3) != fmt.Sprint(h) {
			t.Fatalf("%s: placement moved when a non-holder left", id)
		}
		firsts[h[0].Name]++
	}
	if len(firsts) < 6 {
		t.Fatalf("first shards land on only %d of 8 nodes: %v", len(firsts), firsts)
	}
}

func TestTolerates(t *testing.T) {
	cases := []struct {
		holders []string
		k, want int
	}{
		{[]string{"a", "b", "c", "d", "e", "f"}, 4, 2},
		{[]string{"a", "b", "c", "a", "b", "c"}, 4, 1},
		{[]string{"a", "b", "a", "b", "a", "b"}, 4, 0},
		{[]string{"a", "b", "c", "d", "a", "b"}, 4, 1}, // a,b hold 2 each; c+d together hold 2
		{[]string{"a", "b", "c"}, 3, 0},
		{[]string{"a", "b", "c", "d"}, 1, 3},
		{[]string{"a", "a", "a"}, 1, 0},
		{[]string{"a", "b", "c", "d", "e"}, 2, 3},
	}
	for _, c := range cases {
		if got := tolerates(c.holders, c.k); got != c.want {
			t.Errorf("tolerates(%v, k=%d) = %d, want %d", c.holders, c.k, got, c.want)
		}
	}
}

func FuzzDecodeBlockHeader(f *testing.F) {
	h := make([]byte, blockHeaderLen+5)
	putBlockHeader(h, 7, []byte("hello"))
	copy(h[blockHeaderLen:], "hello")
	f.Add(h)
	var end [blockHeaderLen]byte
	putEndHeader(end[:], 3)
	f.Add(end[:])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, err := decodeBlockHeader(b)
		if err != nil {
			return
		}
		if hdr.Length != endMarker && hdr.Length > maxBlockSize {
			t.Fatalf("accepted length %d", hdr.Length)
		}
		n := len(b) - blockHeaderLen
		if hdr.Length != endMarker && int(hdr.Length) == n {
			if verifyBlock(b, hdr.Index, n) == nil {
				// A block that verifies re-encodes to the same bytes.
				again := make([]byte, len(b))
				putBlockHeader(again, hdr.Index, b[blockHeaderLen:])
				copy(again[blockHeaderLen:], b[blockHeaderLen:])
				if !bytes.Equal(again, b) {
					t.Fatal("verified block does not re-encode to itself")
				}
			}
		}
	})
}

func FuzzDecodeFileHeader(f *testing.F) {
	f.Add(encodeFileHeader(fileHeader{Ref: ShardRef{ID: "a.b", Gen: 42, Index: 5}, BlockSize: 1 << 20}))
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := decodeFileHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if n > len(b) || h.BlockSize < 1 || validateID(h.Ref.ID) != nil {
			t.Fatalf("accepted %+v (%d bytes of %d)", h, n, len(b))
		}
		if !bytes.Equal(encodeFileHeader(h), b[:n]) {
			t.Fatal("decoded header does not re-encode to itself")
		}
	})
}
