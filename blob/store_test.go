package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	sizes := []int{0, 1, testStripe - 1, testStripe, testStripe + 1, 3*testStripe + 17, 20 << 20}
	for i, size := range sizes {
		data := randomBytes(size, uint64(i))
		id := "blob-" + string(rune('a'+i))
		m := mustPut(t, c.nodes[i%6].store, id, data, PutOptions{ContentType: "application/x-test"})
		if m.Size != int64(size) || m.SHA256 != sha(data) || m.Data != 4 || m.Parity != 2 || m.Tolerates != 2 {
			t.Fatalf("size %d: manifest %+v", size, m)
		}
		// Every node reads every blob.
		reader := c.nodes[(i+3)%6].store
		got := readAll(t, reader, id)
		if sha(got) != sha(data) {
			t.Fatalf("size %d: read back %d bytes, sha %s, want %s", size, len(got), sha(got), sha(data))
		}
	}
}

func TestPutValidates(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	st := c.nodes[0].store
	for _, id := range []string{"", ".", "..", "a/b", "a b", string(make([]byte, 257)), "é"} {
		if _, err := st.Put(context.Background(), id, bytes.NewReader(nil), PutOptions{}); !errors.Is(err, ErrBadID) {
			t.Errorf("id %q: err %v, want ErrBadID", id, err)
		}
	}
	for _, o := range []PutOptions{{Data: -1}, {Parity: -2}, {Data: 200, Parity: 57}} {
		if _, err := st.Put(context.Background(), "x", bytes.NewReader(nil), o); !errors.Is(err, ErrBadParams) {
			t.Errorf("%+v: err %v, want ErrBadParams", o, err)
		}
	}
	if _, _, err := st.Open(context.Background(), "absent", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("open absent: %v", err)
	}
}

func TestParamsAndWrapAround(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	data := randomBytes(5*testStripe+3, 7)
	// 3+0 on 3 nodes: no loss tolerated.
	m := mustPut(t, c.nodes[0].store, "noparity", data, PutOptions{Data: 3, Parity: NoParity})
	if m.Parity != 0 || m.Tolerates != 0 {
		t.Fatalf("manifest %+v", m)
	}
	if got := readAll(t, c.nodes[1].store, "noparity"); !bytes.Equal(got, data) {
		t.Fatal("noparity: bytes differ")
	}
	// 4+2 on 3 nodes: two shards per node, one node loss tolerated.
	m = mustPut(t, c.nodes[0].store, "wrapped", data, PutOptions{})
	if m.Tolerates != 1 {
		t.Fatalf("tolerates %d, want 1", m.Tolerates)
	}
	c.stop(c.node(m.Shards[0].Node), false)
	reader := c.nodes[0].store
	if m.Shards[0].Node == c.nodes[0].name {
		reader = c.nodes[1].store
	}
	if got := readAll(t, reader, "wrapped"); !bytes.Equal(got, data) {
		t.Fatal("wrapped: bytes differ with one node down")
	}
}

// holdersExcept returns the nodes holding shards of m, the reader excluded.
func holdersExcept(c *testCluster, m Manifest, reader string) []*testNode {
	var out []*testNode
	for _, sh := range m.Shards {
		if sh.Node != reader {
			out = append(out, c.node(sh.Node))
		}
	}
	return out
}

func TestSurvivesTwoHoldersDown(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(7*testStripe+999, 1)
	m := mustPut(t, c.nodes[0].store, "b", data, PutOptions{})
	reader := c.nodes[0]
	down := holdersExcept(c, m, reader.name)
	// Servers closed but still listed as members: the reader finds out by
	// trying.
	c.stop(down[0], false)
	c.stop(down[1], false)
	if got := readAll(t, reader.store, "b"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ with two holders down")
	}
	c.stop(down[2], false)
	_, rc, err := reader.store.Open(context.Background(), "b", 0, -1)
	if !errors.Is(err, ErrUnavailable) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("three holders down: err %v, want ErrUnavailable", err)
	}
	var se *ShardError
	if !errors.As(err, &se) {
		t.Fatalf("error %v names no shard", err)
	}
}

func TestUnavailableByMembership(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	m := mustPut(t, c.nodes[0].store, "b", randomBytes(3*testStripe, 2), PutOptions{})
	reader := c.nodes[0]
	for _, nd := range holdersExcept(c, m, reader.name)[:3] {
		c.members.Leave(nd.name)
	}
	if _, _, err := reader.store.Open(context.Background(), "b", 0, -1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	got, err := reader.store.Manifest(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	down := 0
	for _, sh := range got.Shards {
		if sh.Health == HealthDown {
			down++
		}
	}
	if down != 3 {
		t.Fatalf("manifest health: %+v", got.Shards)
	}
}

func TestRangeAtStripeEdges(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	const S = testStripe
	size := 4*S + 1234
	data := randomBytes(size, 3)
	mustPut(t, c.nodes[0].store, "r", data, PutOptions{})
	ranges := [][2]int64{
		{0, 1}, {S - 1, 1}, {S, 1}, {S - 1, 2}, {S - 10, S + 20}, {2 * S, S},
		{4 * S, 1234}, {4*S - 1, 1235}, {int64(size) - 1, 1}, {4 * S, -1}, {100, 3 * S},
		{0, int64(size)}, {5, int64(size) * 2},
	}
	for _, r := range ranges {
		for _, reader := range []*Store{c.nodes[0].store, c.nodes[5].store} {
			for _, read := range []func(*Store, string, int64, int64) ([]byte, error){readRange, copyRange} {
				got, err := read(reader, "r", r[0], r[1])
				if err != nil {
					t.Fatalf("range %v: %v", r, err)
				}
				end := int64(size)
				if r[1] >= 0 {
					end = min(end, r[0]+r[1])
				}
				if !bytes.Equal(got, data[r[0]:end]) {
					t.Fatalf("range %v: got %d bytes, want %d (content differs)", r, len(got), end-r[0])
				}
			}
		}
	}
	if _, err := readRange(c.nodes[0].store, "r", int64(size), 1); !errors.Is(err, ErrBadRange) {
		t.Fatalf("offset at end: %v", err)
	}
}

func TestRangeReadsOnlyItsStripes(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(6*testStripe, 4)
	m := mustPut(t, c.nodes[0].store, "r", data, PutOptions{})
	// Damage every block of every shard but those of stripe 2: a range
	// inside stripe 2 must not notice.
	for _, sh := range m.Shards {
		nd := c.node(sh.Node)
		for b := range 6 {
			if b != 2 {
				flipByte(t, nd.shards, m.ref(sh.Index), b, 10)
			}
		}
	}
	got, err := readRange(c.nodes[1].store, "r", 2*testStripe+5, 100)
	if err != nil || !bytes.Equal(got, data[2*testStripe+5:2*testStripe+105]) {
		t.Fatalf("range in stripe 2: err %v", err)
	}
}

func TestFailedUploadLeavesNothing(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(5*testStripe, 5)
	r := io.MultiReader(bytes.NewReader(data[:2*testStripe+100]), &failingReader{err: io.ErrUnexpectedEOF})
	if _, err := c.nodes[0].store.Put(context.Background(), "cut", r, PutOptions{}); !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrBodyRead) {
		t.Fatalf("put with failing body: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cr := &hookReader{r: bytes.NewReader(data), after: 3 * testStripe, hook: cancel}
	if _, err := c.nodes[1].store.Put(ctx, "cancelled", cr, PutOptions{}); err == nil {
		t.Fatal("put with cancelled context succeeded")
	}
	if _, _, ok := c.catalog.Get("cut"); ok {
		t.Fatal("manifest written for a failed upload")
	}
	if _, _, ok := c.catalog.Get("cancelled"); ok {
		t.Fatal("manifest written for a cancelled upload")
	}
	waitFor(t, 5*time.Second, "no shard files", func() bool { return len(c.shardFiles()) == 0 })
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestReplaceRemovesOldGeneration(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	old := mustPut(t, c.nodes[0].store, "v", randomBytes(2*testStripe, 6), PutOptions{})
	data := randomBytes(testStripe+5, 7)
	cur := mustPut(t, c.nodes[1].store, "v", data, PutOptions{ContentType: "text/plain"})
	if cur.Generation == old.Generation {
		t.Fatal("same generation")
	}
	if got := readAll(t, c.nodes[2].store, "v"); !bytes.Equal(got, data) {
		t.Fatal("replaced blob reads wrong bytes")
	}
	waitFor(t, 5*time.Second, "old generation removed", func() bool {
		for _, nd := range c.nodes {
			infos, _ := nd.shards.List()
			for _, in := range infos {
				if in.Ref.Gen == old.Generation {
					return false
				}
			}
		}
		return true
	})
	if n := len(c.shardFiles()); n != 6 {
		t.Fatalf("%d shard files, want 6", n)
	}
}

func TestDeleteWhileHolderDown(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	m := mustPut(t, c.nodes[0].store, "d", randomBytes(3*testStripe, 8), PutOptions{})
	away := holdersExcept(c, m, c.nodes[0].name)[0]
	c.stop(away, true)
	if err := c.nodes[0].store.Delete(context.Background(), "d"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.nodes[1].store.Open(context.Background(), "d", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
	if err := c.nodes[0].store.Delete(context.Background(), "d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	files := c.shardFiles()
	if len(files) != 1 || !strings.HasPrefix(files[0], away.name+"/") {
		t.Fatalf("after delete: files %v, want only the absent holder's", files)
	}
	// It returns: a pass within the grace period keeps the file, one after
	// removes it.
	c.start(away)
	if err := away.store.RepairOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.shardFiles()) != 1 {
		t.Fatal("orphan removed within the grace period")
	}
	c.clock.Advance(DefaultCleanupGrace + time.Second)
	if err := away.store.RepairOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if files := c.shardFiles(); len(files) != 0 {
		t.Fatalf("after cleanup: %v", files)
	}
}

func TestRebuildAfterAbsence(t *testing.T) {
	c := newTestCluster(t, 7, nil)
	data := randomBytes(5*testStripe+77, 9)
	m := mustPut(t, c.nodes[0].store, "rb", data, PutOptions{})
	gone := c.node(m.Shards[1].Node)
	c.stop(gone, true)
	repairAll := func() {
		for _, nd := range c.nodes {
			if nd != gone {
				if err := nd.store.RepairOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	repairAll() // notes the absence
	c.clock.Advance(DefaultRebuildAfter / 2)
	repairAll()
	if cur, _ := c.nodes[0].store.Manifest(context.Background(), "rb"); cur.Shards[1].Node != gone.name {
		t.Fatal("rebuilt before RebuildAfter")
	}
	c.clock.Advance(DefaultRebuildAfter)
	repairAll()
	cur, err := c.nodes[0].store.Manifest(context.Background(), "rb")
	if err != nil {
		t.Fatal(err)
	}
	newNode := cur.Shards[1].Node
	if newNode == gone.name || cur.Tolerates != 2 {
		t.Fatalf("after rebuild: %+v", cur)
	}
	for i, sh := range cur.Shards {
		if sh.Health != HealthOK {
			t.Fatalf("shard %d: %+v", i, sh)
		}
		for j := range i {
			if cur.Shards[j].Node == sh.Node {
				t.Fatalf("two shards on %s", sh.Node)
			}
		}
	}
	// Lose two more holders (not the rebuilt one): the rebuilt shard is
	// needed and must be right.
	reader := c.node(newNode)
	var stopped int
	for _, sh := range cur.Shards {
		if sh.Node != newNode && stopped < 2 {
			c.stop(c.node(sh.Node), true)
			stopped++
		}
	}
	if got := readAll(t, reader.store, "rb"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ after rebuild")
	}
}

func TestFailingShardStore(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	// Make node1's and node2's disks fail on the third block written: one
	// failing holder is given up (parity 1), two fail the upload.
	for _, nd := range c.nodes[1:] {
		c.stop(nd, false)
		c.serve(nd, nd.store.shardServer(&failingStore{ShardStore: nd.shards, failAfter: 2}))
	}
	_, err := c.nodes[0].store.Put(context.Background(), "f", bytes.NewReader(randomBytes(6*testStripe, 10)), PutOptions{Data: 2, Parity: 1})
	var se *ShardError
	if !errors.As(err, &se) || se.Node != "node1" && se.Node != "node2" {
		t.Fatalf("err %v, want a ShardError on node1 or node2", err)
	}
	if _, _, ok := c.catalog.Get("f"); ok {
		t.Fatal("manifest written")
	}
	waitFor(t, 5*time.Second, "no shard files", func() bool { return len(c.shardFiles()) == 0 })
}

func TestTooManyCorruptBlocks(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(3*testStripe, 12)
	m := mustPut(t, c.nodes[0].store, "bad", data, PutOptions{})
	for _, i := range []int{0, 1, 4} {
		flipByte(t, c.node(m.Shards[i].Node).shards, m.ref(i), 1, 0)
	}
	got, err := readRange(c.nodes[0].store, "bad", 0, -1)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	var se *ShardError
	if !errors.As(err, &se) || se.Block != 1 || !errors.Is(se, ErrCorrupt) {
		t.Fatalf("err %v does not name a corrupt block 1", err)
	}
	if !bytes.Equal(got, data[:len(got)]) || len(got) > testStripe {
		t.Fatalf("%d bytes handed out before the failure, want at most stripe 0, all right", len(got))
	}
}

func TestNoLiveNodesAndClosed(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	st := c.nodes[0].store
	c.members.Leave("node0")
	c.members.Leave("node1")
	if _, err := st.Put(context.Background(), "x", bytes.NewReader([]byte("x")), PutOptions{}); !errors.Is(err, ErrTooFewNodes) {
		t.Fatalf("no live node: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), "x", bytes.NewReader(nil), PutOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestWideCodeMemoryBounded: a blob of 1 data and 255 parity shards with
// the default stripe takes blocks small enough that the upload's stripe
// buffers stay within transferMemory (it took 2 GiB for a 5-byte body),
// and it reads back. Everything the three in-process nodes allocate for
// it, the 256 shard transfers' connection buffers included, stays within
// four times that: 128 MiB.
func TestWideCodeMemoryBounded(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.StripeBytes = 0 }) // the default stripe
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := mustPut(t, c.nodes[0].store, "wide", []byte("hello"), PutOptions{Data: 1, Parity: 255})
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*transferMemory {
		t.Fatalf("a 5-byte blob of 1+255 shards allocated %d MiB, more than four times the %d MiB bound of its stripe buffers", grew>>20, transferMemory>>20)
	}
	if m.Data != 1 || m.Parity != 255 || len(m.Shards) != 256 {
		t.Fatalf("manifest %+v", m)
	}
	if got := readAll(t, c.nodes[1].store, "wide"); string(got) != "hello" {
		t.Fatalf("read back %q", got)
	}
}

// A read through WriteTo reads the next stripe while it writes and hashes
// the one before, in two sets of buffers: stripes rebuilt from parity
// (a data shard lost, blocks of another corrupt on consecutive stripes)
// come out whole, and a writer that fails stops the reading at once.
func TestReadAheadRebuildsEveryStripe(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(8*testStripe+321, 45)
	m := mustPut(t, c.nodes[0].store, "ahead", data, PutOptions{})
	if err := c.node(m.Shards[1].Node).shards.Remove(m.ref(1)); err != nil {
		t.Fatal(err)
	}
	for b := 2; b <= 5; b++ {
		flipByte(t, c.node(m.Shards[2].Node).shards, m.ref(2), b, int64(b))
	}
	reader := c.nodes[3].store
	for _, read := range []func(*Store, string, int64, int64) ([]byte, error){copyRange, readRange} {
		got, err := read(reader, "ahead", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read with a shard lost and blocks corrupt: err %v, %d of %d bytes, equal %v", err, len(got), len(data), bytes.Equal(got, data))
		}
	}

	before := runtime.NumGoroutine()
	_, rc, err := reader.Open(context.Background(), "ahead", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	w := &shortWriter{left: 2*testStripe + 5}
	if _, err := rc.(io.WriterTo).WriteTo(w); !errors.Is(err, errWriterFull) {
		t.Fatalf("WriteTo into a failing writer: %v", err)
	}
	rc.Close()
	waitFor(t, 5*time.Second, "the reading goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}

var errWriterFull = errors.New("writer full")

// shortWriter takes left bytes, then fails.
type shortWriter struct{ left int }

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errWriterFull
	}
	w.left -= len(p)
	return len(p), nil
}

// A holder answers a shard read with its length, so the reader is spared
// chunked framing.
func TestShardReadHasLength(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	m := mustPut(t, c.nodes[0].store, "len", randomBytes(3*testStripe+7, 46), PutOptions{Data: 2, Parity: 1})
	nd := c.node(m.Shards[0].Node)
	for _, q := range []string{"", "?from=1&to=3"} {
		resp, err := http.Get(nd.srv.URL + ShardPathPrefix + refPath(m.ref(0)) + q)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("shard read%s: %d %v", q, resp.StatusCode, err)
		}
		if resp.ContentLength <= 0 || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) > 0 {
			t.Fatalf("shard read%s: Content-Length %d, %d bytes, transfer encoding %v", q, resp.ContentLength, len(body), resp.TransferEncoding)
		}
	}
}
