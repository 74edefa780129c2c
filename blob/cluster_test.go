package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock shared by a test cluster's stores.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testNode is one in-process node: a shard directory served over a real
// HTTP server on 127.0.0.1, and a Store.
type testNode struct {
	name   string
	shards *DirStore
	srv    *httptest.Server
	store  *Store
	client *HTTPClient
}

// testCluster is several nodes sharing a membership and either one
// in-memory catalog (catalog) or one catalog each whose writes reach the
// others only when the test delivers them (catalogs).
type testCluster struct {
	t        testing.TB
	members  *InmemCluster
	catalog  *InmemCatalog
	catalogs *InmemCatalogs
	clock    *testClock
	nodes    []*testNode
}

const testStripe = 4 * 4096 // 4 KiB blocks with k=4

// newTestCluster starts n nodes sharing one catalog, without background
// repair or scrubbing.
func newTestCluster(t testing.TB, n int, tune func(*Config)) *testCluster {
	return newCluster(t, n, false, tune)
}

// newLaggingCluster starts n nodes with a catalog each, replicated only
// by c.catalogs.Deliver: what the real catalog does in its worst case.
func newLaggingCluster(t testing.TB, n int, tune func(*Config)) *testCluster {
	return newCluster(t, n, true, tune)
}

func newCluster(t testing.TB, n int, lagging bool, tune func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, members: NewInmemCluster(), clock: &testClock{now: time.Now()}}
	if lagging {
		c.catalogs = NewInmemCatalogs()
	} else {
		c.catalog = NewInmemCatalog()
	}
	for i := range n {
		name := fmt.Sprintf("node%d", i)
		ds, err := NewDirStore(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		nd := &testNode{name: name, shards: ds}
		var catalog Catalog = c.catalog
		if lagging {
			catalog = c.catalogs.Node(name)
		}
		cfg := Config{Shards: ds, Members: c.members.Member(name), Catalog: catalog,
			StripeBytes: testStripe, RepairInterval: -1, ScrubInterval: -1, Now: c.clock.Now}
		if tune != nil {
			tune(&cfg)
		}
		nd.client = NewHTTPClientTimeouts(cfg.ConnectTimeout, cfg.TransferIdleTimeout)
		cfg.Client = nd.client
		nd.store, err = New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
		c.start(nd)
		t.Cleanup(func() {
			_ = nd.store.Close()
			nd.client.CloseIdleConnections()
			if nd.srv != nil {
				nd.srv.Close()
			}
		})
	}
	return c
}

// start serves nd's shards and records on a new port and marks it live.
func (c *testCluster) start(nd *testNode) {
	c.serve(nd, nd.store.ShardHandler())
}

// serve serves h as nd's shard server on a new port and marks nd live.
func (c *testCluster) serve(nd *testNode, h http.Handler) {
	nd.srv = httptest.NewServer(h)
	c.members.Join(Peer{Name: nd.name, HTTPAddr: nd.srv.Listener.Addr().String()})
}

// stop closes nd's server; with leave it also leaves the membership.
func (c *testCluster) stop(nd *testNode, leave bool) {
	nd.srv.Close()
	nd.srv = nil
	if leave {
		c.members.Leave(nd.name)
	}
}

func (c *testCluster) node(name string) *testNode {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// shardFiles lists the shard and temporary files on every node.
func (c *testCluster) shardFiles() []string {
	var out []string
	for _, nd := range c.nodes {
		ents, err := os.ReadDir(nd.shards.Dir())
		if err != nil {
			c.t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, nd.name+"/"+e.Name())
		}
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// readAll reads the whole blob id through st.
func readAll(t testing.TB, st *Store, id string) []byte {
	t.Helper()
	got, err := readRange(st, id, 0, -1)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return got
}

func readRange(st *Store, id string, off, n int64) ([]byte, error) {
	_, rc, err := st.Open(context.Background(), id, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// copyRange reads like readRange through WriteTo (what io.Copy and the
// HTTP answer use), after a first Read of a few bytes.
func copyRange(st *Store, id string, off, n int64) ([]byte, error) {
	_, rc, err := st.Open(context.Background(), id, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	head := make([]byte, 7)
	k, err := rc.Read(head)
	if err != nil && err != io.EOF {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(head[:k])
	_, err = rc.(io.WriterTo).WriteTo(&buf)
	return buf.Bytes(), err
}

func mustPut(t testing.TB, st *Store, id string, data []byte, opt PutOptions) Manifest {
	t.Helper()
	m, err := st.Put(context.Background(), id, bytes.NewReader(data), opt)
	if err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func filesMatching(files []string, sub string) []string {
	var out []string
	for _, f := range files {
		if strings.Contains(f, sub) {
			out = append(out, f)
		}
	}
	return out
}
