package blob

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// blockOffset is where block b's header starts in a shard file.
func blockOffset(t testing.TB, ds *DirStore, ref ShardRef, b int) int64 {
	t.Helper()
	f, err := os.Open(ds.Path(ref))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, n, err := decodeFileHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n) + int64(b)*int64(blockHeaderLen+h.BlockSize)
}

// flipByte inverts byte off of block b's data in the shard file on disk.
func flipByte(t testing.TB, ds *DirStore, ref ShardRef, b int, off int64) {
	t.Helper()
	f, err := os.OpenFile(ds.Path(ref), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := blockOffset(t, ds, ref, b) + blockHeaderLen + off
	var one [1]byte
	if _, err := f.ReadAt(one[:], at); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0xff
	if _, err := f.WriteAt(one[:], at); err != nil {
		t.Fatal(err)
	}
}

// verifyShardFile checks every block of a shard file against its checksum.
func verifyShardFile(ds *DirStore, ref ShardRef, blockLens []int) error {
	rc, err := ds.OpenBlocks(ref, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	br := blockReader{r: rc}
	for _, n := range blockLens {
		if _, err := br.read(n); err != nil {
			return err
		}
	}
	if n, _ := rc.Read(make([]byte, 1)); n != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// A shard being written is handed to the disk as it grows, in contiguous
// ranges of at least writebackBytes from the file's start, rather than all
// at the commit's fsync.
func TestShardWriteStartsWriteback(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ off, n int64 }
	var spans []span
	ds.writeback = func(f *os.File, off, n int64) {
		st, err := f.Stat()
		if err != nil || st.Size() < off+n {
			t.Errorf("writeback of [%d, %d) beyond the file's %d bytes written (%v)", off, off+n, st.Size(), err)
		}
		spans = append(spans, span{off, n})
	}
	ref := ShardRef{ID: "wb", Gen: 1, Index: 0}
	const block, blocks = 1 << 20, 3*writebackBytes/(1<<20) + 1
	w, err := ds.Create(ref, block)
	if err != nil {
		t.Fatal(err)
	}
	p := bytes.Repeat([]byte{7}, block)
	for range blocks {
		if err := w.WriteBlock(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(spans) != 3 {
		t.Fatalf("%d writebacks started for %d MiB written, want one per %d MiB: %v", len(spans), blocks, writebackBytes>>20, spans)
	}
	var next int64
	for _, s := range spans {
		if s.off != next || s.n < writebackBytes {
			t.Fatalf("writebacks %v: want contiguous ranges of at least %d bytes from 0", spans, writebackBytes)
		}
		next = s.off + s.n
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	lens := make([]int, blocks)
	for i := range lens {
		lens[i] = block
	}
	if err := verifyShardFile(ds, ref, lens); err != nil {
		t.Fatal(err)
	}
}

func TestShardFileRoundTripAndCorruption(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := ShardRef{ID: "x.y", Gen: 0xabc, Index: 3}
	w, err := ds.Create(ref, 8)
	if err != nil {
		t.Fatal(err)
	}
	blocks := [][]byte{[]byte("01234567"), []byte("abcdefgh"), []byte("xyz")}
	for _, b := range blocks {
		if err := w.WriteBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	if infos, _ := ds.List(); len(infos) != 1 || !infos[0].Temp {
		t.Fatalf("before commit: %+v", infos)
	}
	if _, err := ds.OpenBlocks(ref, 0, -1); !errors.Is(err, ErrNoShard) {
		t.Fatalf("uncommitted shard visible: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	lens := []int{8, 8, 3}
	if err := verifyShardFile(ds, ref, lens); err != nil {
		t.Fatal(err)
	}
	// Blocks [1, 3) only.
	rc, err := ds.OpenBlocks(ref, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	br := blockReader{r: rc, next: 1}
	if got, err := br.read(8); err != nil || string(got) != "abcdefgh" {
		t.Fatalf("block 1: %q %v", got, err)
	}
	rc.Close()

	flipByte(t, ds, ref, 1, 2)
	err = verifyShardFile(ds, ref, lens)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte: %v, want ErrCorrupt", err)
	}
	_, err = ds.ReadBlock(ref, 1)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "block 1") || !strings.Contains(err.Error(), ds.Path(ref)) {
		t.Fatalf("ReadBlock of a flipped block: %v, want ErrCorrupt naming the shard and block 1", err)
	}
	if p, err := ds.ReadBlock(ref, 2); err != nil || string(p) != "xyz" {
		t.Fatalf("ReadBlock 2: %q %v", p, err)
	}
	if err := ds.RewriteBlock(ref, 1, []byte("abcdefgh")); err != nil {
		t.Fatal(err)
	}
	if err := verifyShardFile(ds, ref, lens); err != nil {
		t.Fatalf("after rewrite: %v", err)
	}
	if err := ds.RewriteBlock(ref, 2, []byte("toolong")); !errors.Is(err, ErrBadParams) {
		t.Fatalf("rewrite with wrong length: %v", err)
	}
	infos, err := ds.List()
	if err != nil || len(infos) != 1 || infos[0].Ref != ref || infos[0].Temp {
		t.Fatalf("list: %+v %v", infos, err)
	}
	if err := ds.Remove(ref); err != nil {
		t.Fatal(err)
	}
	if err := ds.Remove(ref); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

func TestLongIDFileName(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := ShardRef{ID: string(bytes.Repeat([]byte("a"), 256)), Gen: 1, Index: 0}
	w, err := ds.Create(ref, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBlock([]byte("abcd")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	infos, err := ds.List()
	if err != nil || len(infos) != 1 || infos[0].Ref != ref {
		t.Fatalf("list: %+v %v", infos, err)
	}
}

func TestCorruptBlockRebuiltAndRepaired(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(4*testStripe+300, 11)
	m := mustPut(t, c.nodes[0].store, "c", data, PutOptions{})
	// Damage data shard 0 in blocks 1 and 4 (the short last one), and
	// parity shard 5 in block 2.
	damaged := []struct{ index, block int }{{0, 1}, {0, 4}, {5, 2}}
	for _, d := range damaged {
		flipByte(t, c.node(m.Shards[d.index].Node).shards, m.ref(d.index), d.block, 1)
	}
	// Parity is read only when needed: with shard 1's holder down, parity
	// 4 replaces it, and parity 5 is read from stripe 1 on, where shard 0
	// fails its checksum.
	c.stop(c.node(m.Shards[1].Node), false)
	reader := c.node(m.Shards[2].Node).store
	if got := readAll(t, reader, "c"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ with corrupt blocks")
	}
	lens := make([]int, m.Stripes())
	for b := range lens {
		lens[b] = m.blockLen(b)
	}
	for _, i := range []int{0, 5} {
		waitFor(t, 5*time.Second, "shard repaired on disk", func() bool {
			return verifyShardFile(c.node(m.Shards[i].Node).shards, m.ref(i), lens) == nil
		})
	}
}

func TestShardServerRejectsCorruptUpload(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewShardServer(ds, nil))
	defer srv.Close()
	cl := NewHTTPClient()
	defer cl.CloseIdleConnections()
	ref := ShardRef{ID: "s", Gen: 9, Index: 1}
	frame := make([]byte, blockHeaderLen+4)
	putBlockHeader(frame, 0, []byte("abcd"))
	copy(frame[blockHeaderLen:], "abce") // data differs from its checksum
	var end [blockHeaderLen]byte
	putEndHeader(end[:], 1)
	body := io.MultiReader(bytes.NewReader(frame), bytes.NewReader(end[:]))
	resp, err := http.Post(srv.URL+ShardPathPrefix+refPath(ref)+"?bs=4", "", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		t.Fatal("POST accepted")
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+ShardPathPrefix+refPath(ref)+"?bs=4",
		io.MultiReader(bytes.NewReader(frame), bytes.NewReader(end[:])))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("corrupt upload: status %d", resp.StatusCode)
	}
	if infos, _ := ds.List(); len(infos) != 0 {
		t.Fatalf("files left: %+v", infos)
	}
}

// TestWorkedExample keeps doc.go's worked example true.
func TestWorkedExample(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := ShardRef{ID: "a.b", Gen: 0x2a, Index: 5}
	w, err := ds.Create(ref, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"abcd", "ef"} {
		if err := w.WriteBlock([]byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(ds.Dir(), "a.b.000000000000002a.5.shard"))
	if err != nil {
		t.Fatal(err)
	}
	want := "4453505348415244" + "0100050004000000" + "2a00000000000000" + "0300612e62" + "ef3a0562" +
		"f777db5e" + "04000000" + "0000000000000000" + "61626364" +
		"ff4ee08f" + "02000000" + "0100000000000000" + "6566"
	if hex.EncodeToString(got) != want {
		t.Fatalf("file bytes\n%x\nwant\n%s", got, want)
	}
}
