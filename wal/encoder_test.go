package wal

import (
	"bytes"
	"testing"
)

// TestDocExample keeps the worked example in doc.go true.
func TestDocExample(t *testing.T) {
	want := []byte{
		0x05, 0, 0, 0, 0, 0, 0, 0x83,
		0x01, 0, 0, 0, 0, 0, 0, 0,
		0x54, 0xc7, 0x3e, 0x7e, 0, 0, 0, 0,
		'h', 'e', 'l', 'l', 'o', 0, 0, 0,
	}
	got := appendRecord(nil, castagnoli(), 1, []byte("hello"))
	if !bytes.Equal(got, want) {
		t.Fatalf("record bytes\n got % x\nwant % x", got, want)
	}
	seq, p, n, err := decodeRecord(castagnoli(), append(got, make([]byte, 16)...))
	if err != nil || seq != 1 || string(p) != "hello" || n != 32 {
		t.Fatalf("decode = %d %q %d %v", seq, p, n, err)
	}
}
