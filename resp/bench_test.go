package resp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// BenchmarkPipelinedSet: 16-deep pipelines of 100-byte SETs over one
// connection to a real node (--fsync never), replies read in full: the
// server's cost per SET, without redis-benchmark.
func BenchmarkPipelinedSet(b *testing.B) {
	benchPipeline(b, func(i int) string { return cmd("SET", fmt.Sprintf("key:%012d", i%100000), strings.Repeat("x", 100)) }, "+OK\r\n")
}

// BenchmarkPipelinedGet is the same with GETs of a missing key.
func BenchmarkPipelinedGet(b *testing.B) {
	benchPipeline(b, func(i int) string { return cmd("GET", fmt.Sprintf("key:%012d", i%100000)) }, "$-1\r\n")
}

func benchPipeline(b *testing.B, req func(i int) string, reply string) {
	n := startNode(b, nil)
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	const depth = 16
	var batches [][]byte
	for j := range 64 {
		var buf bytes.Buffer
		for i := range depth {
			buf.WriteString(req(j*depth + i))
		}
		batches = append(batches, buf.Bytes())
	}
	want := len(reply) * depth
	got := make([]byte, want)
	b.ResetTimer()
	for i := 0; i < b.N; i += depth {
		if _, err := nc.Write(batches[(i/depth)%len(batches)]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, got); err != nil {
			b.Fatal(err)
		}
	}
}
