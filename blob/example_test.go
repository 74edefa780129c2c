package blob_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/disperse/disperse/blob"
)

// A one-node store: every shard lands on this node, so the blob survives
// no node loss (tolerates 0), but any two of its six shards may still be
// lost or damaged.
func ExampleStore_Put() {
	dir, err := os.MkdirTemp("", "blob-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	members := blob.NewInmemCluster()
	members.Join(blob.Peer{Name: "n1"})
	st, err := blob.New(blob.Config{Dir: dir, Members: members.Member("n1"), Catalog: blob.NewInmemCatalog(),
		StripeBytes: 64})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	ctx := context.Background()
	m, err := st.Put(ctx, "greeting.txt", strings.NewReader("hello, erasure-coded world"), blob.PutOptions{ContentType: "text/plain"})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Size, m.Data, m.Parity, m.StripeBytes, len(m.Shards), m.Tolerates)

	_, rc, err := st.Open(ctx, "greeting.txt", 7, 5)
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Printf("%s\n", b)
	// Output:
	// 26 4 2 64 6 0
	// erasu
}
