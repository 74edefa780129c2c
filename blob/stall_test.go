package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"
)

// testIdle is the transfer idle limit of the stall tests: short, so a
// stall is found quickly, and still far longer than a loopback transfer
// goes without a byte.
const testIdle = 200 * time.Millisecond

func withTestIdle(cfg *Config) { cfg.TransferIdleTimeout = testIdle }

// stallingHandler passes requests to next, but those stall picks it holds
// after reading take bytes of their body (after sending 200 and the
// headers when headers is set) until release is closed or the client goes
// away. Then it reads what
// is left of the body, up to a bound, so that the server need not wait
// before closing a connection with unread bytes.
type stallingHandler struct {
	next    http.Handler
	stall   func(*http.Request) bool
	headers bool
	take    int64
	release chan struct{}
	held    atomic.Int64
}

func (h *stallingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.stall(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	h.held.Add(1)
	if h.take > 0 {
		_, _ = io.CopyN(io.Discard, r.Body, h.take)
	}
	if h.headers {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
	}
	select {
	case <-h.release:
	case <-r.Context().Done():
	}
	_, _ = io.CopyN(io.Discard, r.Body, 64<<20)
}

// stall serves nd's shards through a stallingHandler from now on. The held
// requests are let go when the test ends, before the servers close.
func (c *testCluster) stall(nd *testNode, headers bool, pick func(*http.Request) bool) *stallingHandler {
	h := &stallingHandler{next: nd.store.ShardHandler(), stall: pick, headers: headers,
		release: make(chan struct{})}
	c.stop(nd, false)
	c.serve(nd, h)
	c.t.Cleanup(func() { close(h.release) })
	return h
}

// mustReturn runs f and fails the test if it is still blocked after a
// minute: the calls these tests make would otherwise hang for ever.
func mustReturn(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("%s still blocked after a minute", what)
	}
}

// zeros is an endless blob body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A holder that takes the shard PUT, reads its first bytes and then reads
// nothing more fails the upload once the loopback buffers are full, and
// the upload leaves nothing behind. The body is endless, so only the stall
// can end the PUT.
func TestPutFailsOnStalledHolder(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 6, withTestIdle)
	// The holder of the lowest shard that is not the writer's own: a pause
	// of the whole test process may cut healthy transfers in the same
	// instant, and the upload reports the failure of the lowest shard.
	holders := place("p", c.members.Member("x").Live(), 4)
	stalled := c.node(holders[0].Name)
	if stalled == c.nodes[0] {
		stalled = c.node(holders[1].Name)
	}
	h := c.stall(stalled, false, func(r *http.Request) bool {
		return r.Method == http.MethodPut && r.URL.Query().Has("bs")
	})
	h.take = 1
	var err error
	mustReturn(t, "put with a stalled holder", func() {
		// Far more than the socket buffers take, so the stalled transfer
		// blocks; bounded, so an upload that never notices the stall ends
		// (and fails the test) instead of filling the disk.
		// Without parity, so the stalled shard cannot be given up.
		_, err = c.nodes[0].store.Put(context.Background(), "p", io.LimitReader(zeros{}, 256<<20), PutOptions{Parity: NoParity})
	})
	var se *ShardError
	if !errors.As(err, &se) || se.Node != stalled.name || !errors.Is(err, ErrStalled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want a stall of the shard on %s", err, stalled.name)
	}
	if h.held.Load() == 0 {
		t.Fatal("no request reached the stalled holder")
	}
	if _, _, ok := c.catalog.Get("p"); ok {
		t.Fatal("manifest written for a stalled upload")
	}
	waitFor(t, 5*time.Second, "no shard files", func() bool { return len(c.shardFiles()) == 0 })
}

// A data shard holder that answers a shard GET with its headers and then
// sends nothing is cut, and the blob is rebuilt from parity. Only the
// reader has the short idle limit, so the upload before never races it.
func TestGetReadsAroundStalledHolder(t *testing.T) {
	t.Parallel()
	const reader = "node1"
	c := newTestCluster(t, 6, func(cfg *Config) {
		if cfg.Members.Self() == reader {
			withTestIdle(cfg)
		}
	})
	data := randomBytes(6*testStripe+123, 31)
	m := mustPut(t, c.nodes[0].store, "g", data, PutOptions{})
	stalled := c.node(m.Shards[0].Node)
	if stalled.name == reader {
		stalled = c.node(m.Shards[1].Node)
	}
	h := c.stall(stalled, true, func(r *http.Request) bool {
		return r.Method == http.MethodGet && r.URL.Path != ShardPathPrefix
	})
	var got []byte
	var err error
	mustReturn(t, "read with a stalled holder", func() { got, err = readRange(c.node(reader).store, "g", 0, -1) })
	if err != nil {
		t.Fatal(err)
	}
	if sha(got) != sha(data) {
		t.Fatalf("read %d bytes, sha %s, want %s", len(got), sha(got), sha(data))
	}
	if h.held.Load() == 0 {
		t.Fatal("the stalled holder was never read from")
	}
}

// A holder that never sends answer headers (after taking the whole request
// body, for a PUT) is cut on every kind of request. The calls run at once.
func TestClientStalledReceiver(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cl := NewHTTPClientTimeouts(0, testIdle)
	t.Cleanup(cl.CloseIdleConnections)
	ctx, addr, ref := context.Background(), srv.Listener.Addr().String(), ShardRef{ID: "s", Gen: 1}
	calls := map[string]func() error{
		"OpenBlocks": func() error {
			rc, err := cl.OpenBlocks(ctx, addr, ref, 0, -1)
			if rc != nil {
				_ = rc.Close()
			}
			return err
		},
		"List":         func() error { _, err := cl.List(ctx, addr); return err },
		"Remove":       func() error { return cl.Remove(ctx, addr, ref) },
		"RewriteBlock": func() error { return cl.RewriteBlock(ctx, addr, ref, 0, []byte("abcd")) },
		"Commit": func() error {
			w, err := cl.Create(ctx, addr, ref, 4)
			if err != nil {
				return err
			}
			if err := w.WriteBlock([]byte("abcd")); err != nil {
				w.Abort()
				return err
			}
			return w.Commit()
		},
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(calls))
	for name, call := range calls {
		go func() { results <- result{name, call()} }()
	}
	deadline := time.After(time.Minute)
	for range calls {
		select {
		case r := <-results:
			if !errors.Is(r.err, ErrStalled) || !errors.Is(r.err, ErrUnavailable) {
				t.Errorf("%s: err %v, want ErrStalled and ErrUnavailable", r.name, r.err)
			}
		case <-deadline:
			t.Fatal("calls still blocked after a minute")
		}
	}
}

// slowBlock is larger than the client's read buffer, so a GET cut during
// a pause could not finish from what is buffered.
const slowBlock = 256 << 10

// Time this node leaves a transfer alone, because its own caller is slow,
// does not count: a PUT and a GET, run at once, that each pause for twice
// the idle limit between blocks go through.
func TestClientWaitsOutSlowCaller(t *testing.T) {
	t.Parallel()
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewShardServer(ds, nil))
	t.Cleanup(srv.Close)
	cl := NewHTTPClientTimeouts(0, testIdle)
	t.Cleanup(cl.CloseIdleConnections)
	ctx, addr := context.Background(), srv.Listener.Addr().String()
	// The slow caller is what is under test, so this sleep is the caller's
	// pause, not a wait for a condition.
	pause := func() { time.Sleep(2 * testIdle) }
	up, down := ShardRef{ID: "up", Gen: 2}, ShardRef{ID: "down", Gen: 3}
	upBlocks := [][]byte{randomBytes(slowBlock, 1), randomBytes(slowBlock, 2)}
	downBlocks := [][]byte{randomBytes(slowBlock, 3), randomBytes(slowBlock, 4)}
	writeShard(t, ds, down, downBlocks)

	uploaded := make(chan error, 1)
	go func() {
		w, err := cl.Create(ctx, addr, up, slowBlock)
		if err != nil {
			uploaded <- err
			return
		}
		for i, b := range upBlocks {
			if i > 0 {
				pause()
			}
			if err := w.WriteBlock(b); err != nil {
				uploaded <- err
				return
			}
		}
		uploaded <- w.Commit()
	}()

	rc, err := cl.OpenBlocks(ctx, addr, down, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	readShard(t, rc, down.ID, downBlocks, pause)
	if err := <-uploaded; err != nil {
		t.Fatalf("upload with a pause: %v", err)
	}
	stored, err := ds.OpenBlocks(up, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	readShard(t, stored, up.ID, upBlocks, func() {})
}

// writeShard stores a shard of blocks of slowBlock bytes in ds.
func writeShard(t *testing.T, ds *DirStore, ref ShardRef, blocks [][]byte) {
	t.Helper()
	w, err := ds.Create(ref, slowBlock)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if err := w.WriteBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readShard reads framed blocks of slowBlock bytes of shard name from rc,
// calling between before every block but the first, and checks them.
func readShard(t *testing.T, rc io.Reader, name string, want [][]byte, between func()) {
	t.Helper()
	br := blockReader{r: rc, name: name}
	for i, w := range want {
		if i > 0 {
			between()
		}
		if got, err := br.read(slowBlock); err != nil || !bytes.Equal(got, w) {
			t.Fatalf("block %d: err %v", i, err)
		}
	}
}

func TestConfigTimeouts(t *testing.T) {
	base := Config{Dir: "d", Members: NewInmemCluster().Member("n"), Catalog: NewInmemCatalog()}
	for _, tune := range []func(*Config){
		func(c *Config) { c.ConnectTimeout = -time.Second },
		func(c *Config) { c.TransferIdleTimeout = -time.Second },
	} {
		cfg := base
		tune(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("negative timeout accepted: %+v", cfg)
		}
	}
	cfg := base.withDefaults()
	if cfg.ConnectTimeout != DefaultConnectTimeout || cfg.TransferIdleTimeout != DefaultTransferIdleTimeout {
		t.Fatalf("defaults: connect %v, idle %v", cfg.ConnectTimeout, cfg.TransferIdleTimeout)
	}
	if hc, ok := cfg.Client.(*HTTPClient); !ok || hc.idle != DefaultTransferIdleTimeout {
		t.Fatalf("default client: %#v", cfg.Client)
	}
}
