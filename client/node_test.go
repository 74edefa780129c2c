package client

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/httpd"
	"github.com/prometheus/client_golang/prometheus"
)

// memCache is an in-memory httpd.Cache, so the client meets the node's
// real HTTP layer (routes, parsing, error bodies) in one test process.
type memCache struct {
	mu      sync.Mutex
	entries map[string]engine.Entry
	clock   uint64
}

func (m *memCache) Put(_ context.Context, w cluster.Write) (engine.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.entries[w.Key]
	if !w.If.Holds(cur, ok) {
		return engine.Entry{}, cluster.ErrPrecondition
	}
	m.clock++
	ent := engine.Entry{Key: w.Key, Value: slices.Clone(w.Value), ContentType: w.ContentType,
		ExpiresAt: w.ExpiresAt, Version: engine.Version{Time: m.clock << 16, Node: 1}, Deleted: w.Delete}
	if w.Delete {
		delete(m.entries, w.Key)
	} else {
		m.entries[w.Key] = ent
	}
	return ent, nil
}

func (m *memCache) Delete(ctx context.Context, key string, local bool) (engine.Entry, error) {
	return m.Put(ctx, cluster.Write{Key: key, Local: local, Delete: true})
}

func (m *memCache) Get(key string) (engine.Entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	return e, ok
}

func (m *memCache) List(prefix, after string, limit int) ([]string, string) {
	m.mu.Lock()
	var keys []string
	for k := range m.entries {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	m.mu.Unlock()
	sort.Strings(keys)
	if len(keys) > limit {
		return keys[:limit], keys[limit-1]
	}
	return keys, ""
}

type memMembers []cluster.Member

func (m memMembers) Members() []cluster.Member { return m }

// Tokens of the test node.
const (
	readToken  = "read-token-0123456789abcdef"
	writeToken = "write-token-0123456789abcdef"
)

// testNode is a node's HTTP layer over memCache, with tokens when auth is
// set; ready reports what /readyz answers.
type testNode struct {
	url   string
	mu    sync.Mutex
	ready bool
}

func startTestNode(t testing.TB, auth bool) *testNode {
	t.Helper()
	n := &testNode{ready: true}
	cfg := httpd.Config{
		Cache:      &memCache{entries: map[string]engine.Entry{}},
		Members:    memMembers{{Name: "n1", Addr: "127.0.0.1", GossipPort: 7946, HTTPAddr: "127.0.0.1:8000", State: "alive"}},
		Registerer: prometheus.NewRegistry(),
		Ready: func() (bool, string) {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.ready, "recovering"
		},
	}
	if auth {
		toks, err := httpd.NewTokens([]httpd.Token{{Name: "r", Scope: "read", Secret: readToken}, {Name: "w", Scope: "write", Secret: writeToken}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Tokens = toks
	}
	s, err := httpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	n.url = srv.URL
	return n
}

func (n *testNode) setReady(ok bool) {
	n.mu.Lock()
	n.ready = ok
	n.mu.Unlock()
}

// newTestClient is a client of addr whose backoff waits are recorded, not
// spent.
func newTestClient(t testing.TB, addr string, opts ...Option) (*Client, *waits) {
	t.Helper()
	c, err := New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	c.sleep = w.sleep
	return c, w
}

// waits records the waits a client chose.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return context.Cause(ctx)
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.d)
}

func keyNames(n int) []string {
	var ks []string
	for i := range n {
		ks = append(ks, fmt.Sprintf("p/%03d", i))
	}
	return ks
}
