package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The catalog of every node but the writer lags for the whole test (the
// test never delivers), so only the PUT's and DELETE's own announcements
// can make them visible elsewhere: a PUT is read back on every other node
// at once, a replacement gives the new bytes everywhere at once, and after
// a DELETE no node serves the blob.
func TestReadAfterWriteOnEveryNode(t *testing.T) {
	c := newLaggingCluster(t, 6, nil)
	writer := c.nodes[0].store
	var want []byte
	for round := range 50 {
		want = randomBytes(testStripe+round*97, uint64(round))
		m := mustPut(t, writer, "raw", want, PutOptions{})
		for _, nd := range c.nodes[1:] {
			got, err := readRange(nd.store, "raw", 0, -1)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("round %d: read on %s right after the PUT: err %v, %d bytes", round, nd.name, err, len(got))
			}
			if hm, err := nd.store.Lookup(context.Background(), "raw"); err != nil || hm.SHA256 != m.SHA256 {
				t.Fatalf("round %d: lookup on %s: %v %s", round, nd.name, err, hm.SHA256)
			}
		}
	}
	if err := writer.Delete(context.Background(), "raw"); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		if _, _, err := nd.store.Open(context.Background(), "raw", 0, -1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read on %s after the DELETE: %v", nd.name, err)
		}
	}
	// Once the catalogs catch up, nothing changes.
	c.catalogs.Deliver()
	for _, nd := range c.nodes {
		if _, _, err := nd.store.Open(context.Background(), "raw", 0, -1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read on %s after delivery: %v", nd.name, err)
		}
	}
	waitFor(t, 5*time.Second, "no shard files", func() bool { return len(c.shardFiles()) == 0 })
}

// A blob deleted and stored again at once, on the node that deleted it
// and on another, is not held up waiting for the catalog to tell the
// deletion's version (the cluster's catalog does not tell it).
func TestPutRightAfterDelete(t *testing.T) {
	c := newLaggingCluster(t, 3, nil)
	for _, nd := range c.nodes {
		nd.store.catalog = hideTombstones{nd.store.catalog}
	}
	mustPut(t, c.nodes[0].store, "again", []byte("one"), PutOptions{})
	c.catalogs.Deliver()
	if err := c.nodes[0].store.Delete(context.Background(), "again"); err != nil {
		t.Fatal(err)
	}
	c.catalogs.Deliver()
	for _, nd := range c.nodes[:2] {
		start := time.Now()
		mustPut(t, nd.store, "again", []byte(nd.name), PutOptions{})
		if took := time.Since(start); took > DefaultManifestTimeout/2 {
			t.Fatalf("PUT on %s after the DELETE took %v", nd.name, took)
		}
		c.catalogs.Deliver()
		if got := readAll(t, c.nodes[2].store, "again"); string(got) != nd.name {
			t.Fatalf("read %q", got)
		}
		if err := nd.store.Delete(context.Background(), "again"); err != nil {
			t.Fatal(err)
		}
		c.catalogs.Deliver()
	}
}

// hideTombstones is a catalog that does not tell a deletion's version, as
// the cluster's does not.
type hideTombstones struct{ Catalog }

func (h hideTombstones) Get(key string) ([]byte, Version, bool) {
	b, v, ok := h.Catalog.Get(key)
	if !ok {
		return nil, Version{}, false
	}
	return b, v, true
}

// A node that missed the announcement (it joined after the PUT, its
// catalog empty) asks the likely holders before it answers that there is
// no such blob; a blob nobody has is still ErrNotFound.
func TestNodeWithoutManifestAsksHolders(t *testing.T) {
	c := newLaggingCluster(t, 6, nil)
	late := c.nodes[5]
	c.stop(late, true)
	data := randomBytes(3*testStripe+5, 40)
	mustPut(t, c.nodes[0].store, "late", data, PutOptions{})
	c.start(late)
	if got := readAll(t, late.store, "late"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	if _, _, err := late.store.Open(context.Background(), "nobody-has-it", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent blob: %v", err)
	}
}

// A holder that is a member but does not answer (crashed before gossip
// noticed, or hung) is replaced by the next node in rendezvous order, and
// the blob is stored whole on the others.
// TestPutGoesOnWhenHoldersDie: holders whose connections drop in the
// middle of an upload are given up while at most m are; the blob is
// stored with the shards left, says what it tolerates, and reads back.
// One more loss fails the upload and leaves nothing.
func TestPutGoesOnWhenHoldersDie(t *testing.T) {
	for _, dying := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d of 6", dying), func(t *testing.T) {
			c := newTestCluster(t, 6, nil)
			id := fmt.Sprintf("dying-%d", dying)
			data := randomBytes(12*testStripe, uint64(dying))
			var victims []*testNode
			for _, p := range place(id, c.members.Member("x").Live(), 6) {
				if p.Name != c.nodes[0].name && len(victims) < dying {
					victims = append(victims, c.node(p.Name))
				}
			}
			r := &hookReader{r: bytes.NewReader(data), after: 4 * testStripe, hook: func() {
				for _, v := range victims {
					v.srv.CloseClientConnections() // the holder's end of the transfer is gone
				}
			}}
			man, err := c.nodes[0].store.Put(context.Background(), id, r, PutOptions{})
			lostMetric := counterValue(t, c.nodes[0].store.met.shardsLost)
			if dying > 2 {
				var se *ShardError
				if !errors.As(err, &se) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("put losing %d holders of 4+2: err %v, want a ShardError", dying, err)
				}
				if _, _, ok := c.catalog.Get(id); ok {
					t.Fatal("manifest written for a failed upload")
				}
				waitFor(t, 5*time.Second, "no shard files", func() bool { return len(c.shardFiles()) == 0 })
				return
			}
			if err != nil {
				t.Fatalf("put losing %d holders of 4+2: %v", dying, err)
			}
			if man.Tolerates != 2-dying || lostMetric != float64(dying) {
				t.Fatalf("tolerates %d, shards lost %v; want %d and %d", man.Tolerates, lostMetric, 2-dying, dying)
			}
			for _, v := range victims {
				if !slices.ContainsFunc(man.Shards, func(sh Shard) bool { return sh.Node == v.name }) {
					t.Fatalf("manifest %+v does not place a shard on %s, whose shard repair rebuilds", man.Shards, v.name)
				}
			}
			if got := readAll(t, c.nodes[3].store, id); sha(got) != sha(data) {
				t.Fatalf("read back %d bytes, sha %s, want %s", len(got), sha(got), sha(data))
			}
		})
	}
}

// hookReader calls hook once after bytes have been read.
type hookReader struct {
	r     io.Reader
	n     int
	after int
	hook  func()
	done  bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.n >= h.after && !h.done {
		h.done = true
		h.hook()
	}
	n, err := h.r.Read(p)
	h.n += n
	return n, err
}

func TestPutReplacesHolderThatDoesNotAnswer(t *testing.T) {
	for _, how := range []string{"refuses", "hangs"} {
		t.Run(how, func(t *testing.T) {
			c := newTestCluster(t, 7, func(cfg *Config) { cfg.ConnectTimeout = 300 * time.Millisecond })
			id := "replace-" + how
			dead := c.node(place(id, c.members.Member("x").Live(), 6)[2].Name)
			switch how {
			case "refuses":
				c.stop(dead, false) // still listed as live
			case "hangs":
				release := make(chan struct{})
				t.Cleanup(func() { close(release) })
				c.stop(dead, false)
				c.serve(dead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}))
			}
			writer := c.nodes[0]
			if writer == dead {
				writer = c.nodes[1]
			}
			data := randomBytes(4*testStripe+1, 41)
			m := mustPut(t, writer.store, id, data, PutOptions{})
			for _, sh := range m.Shards {
				if sh.Node == dead.name {
					t.Fatalf("manifest names the dead holder: %+v", m.Shards)
				}
			}
			if m.Tolerates != 2 {
				t.Fatalf("tolerates %d on six distinct live nodes", m.Tolerates)
			}
			if got := readAll(t, writer.store, id); !bytes.Equal(got, data) {
				t.Fatal("bytes differ")
			}
			if n := counterValue(t, writer.store.met.holdersReplaced); n != 1 {
				t.Fatalf("holders replaced: %v", n)
			}
		})
	}
}

// enospcStore is a ShardStore whose writes fail with ENOSPC while full is
// set, as a real file system does once it has no space left.
type enospcStore struct {
	ShardStore
	full atomic.Bool
}

func (e *enospcStore) Create(ref ShardRef, bs int) (ShardWriter, error) {
	w, err := e.ShardStore.Create(ref, bs)
	if err != nil {
		return nil, err
	}
	return &enospcWriter{ShardWriter: w, s: e}, nil
}

type enospcWriter struct {
	ShardWriter
	s *enospcStore
	n int
}

func (w *enospcWriter) WriteBlock(p []byte) error {
	w.n++
	if w.s.full.Load() && w.n > 1 {
		return &os.PathError{Op: "write", Path: "shard", Err: syscall.ENOSPC}
	}
	return w.ShardWriter.WriteBlock(p)
}

// A holder's disk fills during a PUT: the PUT fails with ErrDiskFull,
// leaves no shard, temporary or committed, on any node, and once space is
// freed the same PUT succeeds without a restart. Both a remote holder and
// the writer's own disk.
func TestPutOnFullDisk(t *testing.T) {
	for _, where := range []string{"remote", "local"} {
		t.Run(where, func(t *testing.T) {
			c := newTestCluster(t, 6, nil)
			writer := c.nodes[0]
			full := c.nodes[3]
			if where == "local" {
				full = writer
			}
			es := &enospcStore{ShardStore: full.shards}
			es.full.Store(true)
			c.stop(full, false)
			c.serve(full, full.store.shardServer(es))
			full.store.local = es
			data := randomBytes(5*testStripe, 42)
			_, err := writer.store.Put(context.Background(), "full", bytes.NewReader(data), PutOptions{})
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("err %v, want ErrDiskFull", err)
			}
			if _, _, ok := c.catalog.Get("full"); ok {
				t.Fatal("manifest written")
			}
			waitFor(t, 5*time.Second, "no shard files", func() bool { return len(c.shardFiles()) == 0 })
			es.full.Store(false)
			mustPut(t, writer.store, "full", data, PutOptions{})
			if got := readAll(t, c.nodes[1].store, "full"); !bytes.Equal(got, data) {
				t.Fatal("bytes differ")
			}
		})
	}
}

// A full read whose bytes do not hash to the manifest's sha256 fails
// before it hands out the last stripe, and is counted; a range read is
// not checked.
func TestFullReadChecksSHA256(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	data := randomBytes(3*testStripe+11, 43)
	m := mustPut(t, c.nodes[0].store, "sum", data, PutOptions{})
	m.SHA256 = strings.Repeat("0", 64)
	rec, _, _ := c.nodes[0].store.catalogRecord("sum")
	if _, err := c.catalog.Put(context.Background(), "sum", encodeManifest(&m), rec.Version); err != nil {
		t.Fatal(err)
	}
	reader := c.nodes[2].store
	for i, read := range []func(*Store, string, int64, int64) ([]byte, error){readRange, copyRange} {
		got, err := read(reader, "sum", 0, -1)
		if !errors.Is(err, ErrChecksum) {
			t.Fatalf("err %v, want ErrChecksum", err)
		}
		if len(got) > 3*testStripe || !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("%d bytes handed out, want at most the stripes before the last", len(got))
		}
		if n := counterValue(t, reader.met.checksumFailures); n != float64(i+1) {
			t.Fatalf("checksum failures counted: %v", n)
		}
	}
	if got, err := readRange(reader, "sum", 5, int64(len(data))-5); err != nil || !bytes.Equal(got, data[5:]) {
		t.Fatalf("range read: %v", err)
	}
}

// With the shard files of three holders removed, fewer than k shards
// remain: the read fails before its first byte with ErrUnavailable, never
// ErrNotFound.
func TestFewerThanKShardsIsUnavailable(t *testing.T) {
	c := newTestCluster(t, 6, nil)
	m := mustPut(t, c.nodes[0].store, "few", randomBytes(2*testStripe, 44), PutOptions{})
	for i := range 3 {
		if err := c.node(m.Shards[i].Node).shards.Remove(m.ref(i)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := c.nodes[0].store.Open(context.Background(), "few", 0, -1)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v, want ErrUnavailable and not ErrNotFound", err)
	}
	got, err := c.nodes[0].store.Manifest(context.Background(), "few")
	if err != nil || got.Health != HealthUnreadable || got.Tolerates != 0 || got.Shards[0].Health != HealthMissing {
		t.Fatalf("manifest %+v, err %v", got, err)
	}
}

// A shard PUT or block rewrite that claims a huge block costs memory only
// for the bytes actually sent: 16 bytes claiming a block of 1 GiB
// allocate far less than a MiB.
func TestShardRequestsAllocateWhatArrives(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewShardServer(ds, nil))
	t.Cleanup(srv.Close)
	ref := ShardRef{ID: "big", Gen: 1}
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
	claim := make([]byte, blockHeaderLen)
	putBlockHeader(claim, 0, nil)
	claim[4], claim[5], claim[6], claim[7] = 0, 0, 0, 0x40 // length 1 GiB
	for _, url := range []string{
		srv.URL + ShardPathPrefix + refPath(ShardRef{ID: "new", Gen: 1}) + fmt.Sprintf("?bs=%d", maxBlockSize),
		srv.URL + ShardPathPrefix + refPath(ref) + "?block=0",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(claim))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		runtime.ReadMemStats(&after)
		if resp.StatusCode < 400 {
			t.Fatalf("%s: status %d", url, resp.StatusCode)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Fatalf("%s: %d bytes allocated for a 16-byte request", url, grew)
		}
	}
}

// counterValue reads a counter or gauge.
func counterValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("%v is neither a counter nor a gauge", m.Desc())
	return 0
}

// Conditional writes are decided by the manifest's compare-and-set, not
// by the check before the upload: of concurrent create-only PUTs of one
// id on one node exactly one wins and its bytes are the blob; the losers'
// shards are removed; a DELETE whose If-Match names a replaced blob
// changes nothing.
func TestConditionalPutsRace(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	st := c.nodes[0].store
	const writers = 6
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			_, errs[i] = st.Put(context.Background(), "once", bytes.NewReader(randomBytes(testStripe+i, uint64(i))),
				PutOptions{If: Condition{IfNoneMatch: "*"}})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created the blob", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, ErrPrecondition):
			t.Fatalf("writer %d: %v, want ErrPrecondition", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the blob")
	}
	want := randomBytes(testStripe+winner, uint64(winner))
	if got := readAll(t, c.nodes[1].store, "once"); !bytes.Equal(got, want) {
		t.Fatalf("the blob reads %d bytes, not the winner's %d", len(got), len(want))
	}
	m, err := st.Lookup(context.Background(), "once")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "only the winner's shard files", func() bool {
		return len(c.shardFiles()) == m.Data+m.Parity
	})

	mustPut(t, st, "once", []byte("replaced"), PutOptions{If: Condition{IfMatch: m.SHA256}})
	if err := st.DeleteIf(context.Background(), "once", Condition{IfMatch: m.SHA256}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("DELETE naming the replaced blob: %v, want ErrPrecondition", err)
	}
	if got := readAll(t, c.nodes[2].store, "once"); string(got) != "replaced" {
		t.Fatalf("after a refused DELETE the blob reads %q", got)
	}
}

// refuseRecords answers every announcement of a record (PUT of a blob's
// record) 503, and passes everything else to h.
func refuseRecords(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, ShardPathPrefix)
		if r.Method == http.MethodPut && rest != "" && !strings.Contains(rest, "/") {
			http.Error(w, "refused", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// A node that missed the announcement of a DELETE, or of a replacing PUT
// whose old shards are gone, still holds the old manifest; when its read
// finds the shards gone it asks the holders: the deleted blob is not
// found (never unavailable), the replaced one reads as the new bytes.
func TestMissedAnnouncementReadsTheTruth(t *testing.T) {
	c := newLaggingCluster(t, 4, nil)
	deaf := c.nodes[3]
	mustPut(t, c.nodes[0].store, "gone", randomBytes(2*testStripe, 50), PutOptions{})
	old := mustPut(t, c.nodes[0].store, "moved", randomBytes(2*testStripe, 51), PutOptions{})
	if _, err := readRange(deaf.store, "gone", 0, -1); err != nil {
		t.Fatal(err)
	}
	c.stop(deaf, false)
	c.serve(deaf, refuseRecords(deaf.store.shardServer(deaf.shards)))

	if err := c.nodes[0].store.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	want := randomBytes(3*testStripe, 52)
	mustPut(t, c.nodes[1].store, "moved", want, PutOptions{})
	for i := range old.Shards { // as their holders' cleanup does after the grace
		if err := c.node(old.Shards[i].Node).shards.Remove(old.ref(i)); err != nil && !errors.Is(err, ErrNoShard) && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if m, err := deaf.store.Lookup(context.Background(), "gone"); err != nil || m.ID != "gone" {
		t.Fatalf("the deaf node should still hold the old manifest: %v", err)
	}
	if _, err := readRange(deaf.store, "gone", 0, -1); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("read of a deleted blob on the node that missed the DELETE: %v, want ErrNotFound", err)
	}
	if got := readAll(t, deaf.store, "moved"); !bytes.Equal(got, want) {
		t.Fatalf("read of a replaced blob on the node that missed the PUT: %d bytes, want the new %d", len(got), len(want))
	}
}
