package httpd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/blob"
)

// blobNode is one node of an in-process blob cluster behind a real Server.
type blobNode struct {
	name  string
	store *blob.Store
	srv   *httptest.Server
}

// newBlobCluster starts n nodes, each a blob.Store behind its own Server
// on 127.0.0.1, sharing an in-memory catalog and membership.
func newBlobCluster(t testing.TB, n int) ([]*blobNode, *blob.InmemCluster) {
	t.Helper()
	catalog := blob.NewInmemCatalog()
	return startBlobCluster(t, n, func(string) blob.Catalog { return catalog }, nil)
}

// startBlobCluster starts n nodes with the catalog catalogOf gives each,
// tune changing each node's config.
func startBlobCluster(t testing.TB, n int, catalogOf func(name string) blob.Catalog, tune func(*blob.Config)) ([]*blobNode, *blob.InmemCluster) {
	t.Helper()
	members := blob.NewInmemCluster()
	var nodes []*blobNode
	for i := range n {
		name := fmt.Sprintf("node%d", i)
		cfg := blob.Config{Dir: filepath.Join(t.TempDir(), "blobs"), Members: members.Member(name),
			Catalog: catalogOf(name), StripeBytes: 4 * 1024, RepairInterval: -1, ScrubInterval: -1}
		if tune != nil {
			tune(&cfg)
		}
		st, err := blob.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, _, _ := newFakeServer(t, func(c *Config) { c.Blobs = st })
		srv := httptest.NewServer(s.Handler())
		members.Join(blob.Peer{Name: name, HTTPAddr: srv.Listener.Addr().String()})
		t.Cleanup(func() { srv.Close(); _ = st.Close() })
		nodes = append(nodes, &blobNode{name: name, store: st, srv: srv})
	}
	return nodes, members
}

func sendBlob(t testing.TB, method, url string, body io.Reader, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func wantBlobStatus(t testing.TB, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d (body %q)", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
	if code != "" {
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || e.Code != code || e.Error == "" {
			t.Fatalf("error body %q, want code %q", body, code)
		}
	}
}

func TestBlobPutGet(t *testing.T) {
	nodes, _ := newBlobCluster(t, 6)
	data := make([]byte, 50_000)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	sum := sha256.Sum256(data)
	resp, body := sendBlob(t, http.MethodPut, nodes[0].srv.URL+"/blob/photo.jpg", bytes.NewReader(data), "Content-Type", "image/jpeg")
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "size", "sha256", "data", "parity", "stripe_bytes", "content_type", "created_at", "shards", "tolerates"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("manifest %s lacks %q", body, k)
		}
	}
	if m["sha256"] != hex.EncodeToString(sum[:]) || m["size"].(float64) != 50_000 || m["tolerates"].(float64) != 2 {
		t.Fatalf("manifest %s", body)
	}
	if shards := m["shards"].([]any); len(shards) != 6 || shards[0].(map[string]any)["node"] == "" {
		t.Fatalf("shards %v", shards)
	}

	url := nodes[4].srv.URL + "/blob/photo.jpg"
	resp, body = sendBlob(t, http.MethodGet, url, nil)
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	if !bytes.Equal(body, data) {
		t.Fatal("GET bytes differ")
	}
	h := resp.Header
	if h.Get("Content-Length") != "50000" || h.Get("Content-Type") != "image/jpeg" ||
		h.Get("Etag") != `"`+hex.EncodeToString(sum[:])+`"` || h.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("headers %v", h)
	}
	resp, body = sendBlob(t, http.MethodHead, url, nil)
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	if len(body) != 0 || resp.Header.Get("Content-Length") != "50000" {
		t.Fatalf("HEAD: %v %q", resp.Header, body)
	}
	resp, body = sendBlob(t, http.MethodGet, url, nil, "If-None-Match", h.Get("Etag"))
	wantBlobStatus(t, resp, body, http.StatusNotModified, "")
}

func TestBlobRange(t *testing.T) {
	nodes, _ := newBlobCluster(t, 3)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	resp, body := sendBlob(t, http.MethodPut, nodes[0].srv.URL+"/blob/r", bytes.NewReader(data))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	url := nodes[1].srv.URL + "/blob/r"
	cases := []struct {
		rng        string
		from, to   int // expected bytes [from, to]
		contentRng string
	}{
		{"bytes=0-0", 0, 0, "bytes 0-0/10000"},
		{"bytes=4095-4096", 4095, 4096, "bytes 4095-4096/10000"},
		{"bytes=9000-", 9000, 9999, "bytes 9000-9999/10000"},
		{"bytes=-10", 9990, 9999, "bytes 9990-9999/10000"},
		{"bytes=9990-20000", 9990, 9999, "bytes 9990-9999/10000"},
	}
	for _, c := range cases {
		resp, body := sendBlob(t, http.MethodGet, url, nil, "Range", c.rng)
		wantBlobStatus(t, resp, body, http.StatusPartialContent, "")
		if !bytes.Equal(body, data[c.from:c.to+1]) || resp.Header.Get("Content-Range") != c.contentRng ||
			resp.Header.Get("Content-Length") != fmt.Sprint(c.to-c.from+1) {
			t.Fatalf("%s: %q, headers %v", c.rng, body, resp.Header)
		}
	}
	resp, body = sendBlob(t, http.MethodGet, url, nil, "Range", "bytes=10000-")
	wantBlobStatus(t, resp, body, http.StatusRequestedRangeNotSatisfiable, CodeRangeNotSatisfiable)
	if resp.Header.Get("Content-Range") != "bytes */10000" {
		t.Fatalf("416 Content-Range %q", resp.Header.Get("Content-Range"))
	}
	resp, body = sendBlob(t, http.MethodGet, url, nil, "Range", "bytes=0-1,5-6")
	wantBlobStatus(t, resp, body, http.StatusOK, "")
}

func TestBlobErrors(t *testing.T) {
	nodes, members := newBlobCluster(t, 6)
	base := nodes[0].srv.URL
	resp, body := sendBlob(t, http.MethodGet, base+"/blob/absent", nil)
	wantBlobStatus(t, resp, body, http.StatusNotFound, CodeNotFound)
	resp, body = sendBlob(t, http.MethodGet, base+"/blob/absent/manifest", nil)
	wantBlobStatus(t, resp, body, http.StatusNotFound, CodeNotFound)
	for _, path := range []string{"/blob/a%20b", "/blob/..", "/blob/a/b", "/blob/" + strings.Repeat("x", 257)} {
		resp, body = sendBlob(t, http.MethodPut, base+path, strings.NewReader("x"))
		wantBlobStatus(t, resp, body, http.StatusBadRequest, CodeBadRequest)
	}
	for _, q := range []string{"data=0", "parity=-1", "data=x", "data=200&parity=100"} {
		resp, body = sendBlob(t, http.MethodPut, base+"/blob/p?"+q, strings.NewReader("x"))
		wantBlobStatus(t, resp, body, http.StatusBadRequest, CodeBadRequest)
	}
	resp, body = sendBlob(t, http.MethodPut, base+"/blob/np?data=2&parity=0", strings.NewReader("abc"))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	if !strings.Contains(string(body), `"parity":0`) {
		t.Fatalf("parity=0: %s", body)
	}

	resp, body = sendBlob(t, http.MethodPut, base+"/blob/u", bytes.NewReader(make([]byte, 20_000)))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	var m blob.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	gone := 0
	for _, sh := range m.Shards {
		if sh.Node != nodes[0].name && gone < 3 {
			members.Leave(sh.Node)
			gone++
		}
	}
	resp, body = sendBlob(t, http.MethodGet, base+"/blob/u", nil)
	wantBlobStatus(t, resp, body, http.StatusServiceUnavailable, CodeUnavailable)
	resp, body = sendBlob(t, http.MethodGet, base+"/blob/u/manifest", nil)
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	if n := strings.Count(string(body), `"health":"down"`); n != 3 {
		t.Fatalf("manifest health: %s", body)
	}
}

func TestBlobDeleteAndList(t *testing.T) {
	nodes, _ := newBlobCluster(t, 3)
	base := nodes[0].srv.URL
	for _, id := range []string{"a", "b", "c"} {
		resp, body := sendBlob(t, http.MethodPut, base+"/blob/"+id, strings.NewReader(id))
		wantBlobStatus(t, resp, body, http.StatusCreated, "")
	}
	resp, body := sendBlob(t, http.MethodGet, base+"/blob?limit=2", nil)
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	var page blobList
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Blobs) != 2 || page.Blobs[0].ID != "a" || page.Next != "b" {
		t.Fatalf("page 1: %s", body)
	}
	resp, body = sendBlob(t, http.MethodGet, base+"/blob?limit=2&after=b", nil)
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	if err := json.Unmarshal(body, &page); err != nil || len(page.Blobs) != 1 || page.Blobs[0].ID != "c" || page.Next != "" {
		t.Fatalf("page 2: %s", body)
	}
	resp, body = sendBlob(t, http.MethodDelete, nodes[1].srv.URL+"/blob/b", nil)
	wantBlobStatus(t, resp, body, http.StatusNoContent, "")
	resp, body = sendBlob(t, http.MethodGet, nodes[2].srv.URL+"/blob/b", nil)
	wantBlobStatus(t, resp, body, http.StatusNotFound, CodeNotFound)
	resp, body = sendBlob(t, http.MethodDelete, base+"/blob/b", nil)
	wantBlobStatus(t, resp, body, http.StatusNoContent, "")
}

// Each node keeps its own catalog, never replicated in this test: only
// the PUT's and DELETE's own announcements reach the others. Still every
// node serves a blob right after its 201, the new bytes right after a
// replacing PUT, and none serves it after the 204 of its DELETE.
func TestBlobReadAfterWriteOnEveryNode(t *testing.T) {
	catalogs := blob.NewInmemCatalogs()
	// A PUT waits up to ManifestTimeout for its catalog to catch up with
	// the previous PUT made elsewhere, which here never happens.
	nodes, _ := startBlobCluster(t, 6, catalogs.Node, func(c *blob.Config) { c.ManifestTimeout = 200 * time.Millisecond })
	for round := range 10 {
		data := bytes.Repeat([]byte{byte(round)}, 9000+round)
		resp, body := sendBlob(t, http.MethodPut, nodes[round%6].srv.URL+"/blob/raw", bytes.NewReader(data))
		wantBlobStatus(t, resp, body, http.StatusCreated, "")
		for _, nd := range nodes {
			resp, body := sendBlob(t, http.MethodGet, nd.srv.URL+"/blob/raw", nil)
			wantBlobStatus(t, resp, body, http.StatusOK, "")
			if !bytes.Equal(body, data) {
				t.Fatalf("round %d: %s serves other bytes", round, nd.name)
			}
			resp, body = sendBlob(t, http.MethodHead, nd.srv.URL+"/blob/raw", nil)
			wantBlobStatus(t, resp, body, http.StatusOK, "")
		}
	}
	resp, body := sendBlob(t, http.MethodDelete, nodes[2].srv.URL+"/blob/raw", nil)
	wantBlobStatus(t, resp, body, http.StatusNoContent, "")
	for _, nd := range nodes {
		resp, body := sendBlob(t, http.MethodGet, nd.srv.URL+"/blob/raw", nil)
		wantBlobStatus(t, resp, body, http.StatusNotFound, CodeNotFound)
	}
}

// fullDisk is a shard store whose writes fail with ENOSPC while full.
type fullDisk struct {
	blob.ShardStore
	full atomic.Bool
}

func (f *fullDisk) Create(ref blob.ShardRef, bs int) (blob.ShardWriter, error) {
	if f.full.Load() {
		return nil, &os.PathError{Op: "write", Path: "shard", Err: syscall.ENOSPC}
	}
	return f.ShardStore.Create(ref, bs)
}

// A PUT on a node whose disk is full answers 507 disk_full and leaves no
// shard anywhere; once space is back, the same PUT is a 201.
func TestBlobPutDiskFull(t *testing.T) {
	catalog := blob.NewInmemCatalog()
	var disk *fullDisk
	dirs := map[string]string{}
	nodes, _ := startBlobCluster(t, 3, func(string) blob.Catalog { return catalog }, func(c *blob.Config) {
		ds, err := blob.NewDirStore(c.Dir)
		if err != nil {
			t.Fatal(err)
		}
		dirs[c.Members.Self()] = c.Dir
		c.Shards = ds
		if c.Members.Self() == "node0" {
			disk = &fullDisk{ShardStore: ds}
			c.Shards = disk
		}
	})
	disk.full.Store(true)
	data := bytes.Repeat([]byte("x"), 30_000)
	resp, body := sendBlob(t, http.MethodPut, nodes[0].srv.URL+"/blob/f", bytes.NewReader(data))
	wantBlobStatus(t, resp, body, http.StatusInsufficientStorage, CodeDiskFull)
	// The other holders drop what they received once they see the upload
	// cut, a moment after the answer.
	deadline := time.Now().Add(5 * time.Second)
	for name, dir := range dirs {
		for {
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s keeps %d files after the failed PUT", name, len(ents))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	disk.full.Store(false)
	resp, body = sendBlob(t, http.MethodPut, nodes[0].srv.URL+"/blob/f", bytes.NewReader(data))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
}

// With the shard files of three of six holders lost, a GET answers 503
// with Retry-After (not 404), and the manifest says which shards are
// missing and that the blob is unreadable.
func TestBlobFewerThanKShardsIs503(t *testing.T) {
	dirs := map[string]string{}
	catalog := blob.NewInmemCatalog()
	nodes, _ := startBlobCluster(t, 6, func(string) blob.Catalog { return catalog }, func(c *blob.Config) {
		dirs[c.Members.Self()] = c.Dir
	})
	resp, body := sendBlob(t, http.MethodPut, nodes[0].srv.URL+"/blob/few", bytes.NewReader(make([]byte, 20_000)))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	var m blob.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, sh := range m.Shards[:3] {
		files, _ := filepath.Glob(filepath.Join(dirs[sh.Node], "few.*.shard"))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	resp, body = sendBlob(t, http.MethodGet, nodes[5].srv.URL+"/blob/few", nil)
	wantBlobStatus(t, resp, body, http.StatusServiceUnavailable, CodeUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	resp, body = sendBlob(t, http.MethodGet, nodes[5].srv.URL+"/blob/few/manifest", nil)
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Health != blob.HealthUnreadable || m.Tolerates != 0 || strings.Count(string(body), `"health":"missing"`) != 3 {
		t.Fatalf("manifest %s", body)
	}
}

// A full GET whose bytes do not hash to the manifest's sha256 is cut: the
// client sees a body shorter than Content-Length, never a complete wrong
// one.
func TestBlobChecksumMismatchCutsTheAnswer(t *testing.T) {
	catalog := blob.NewInmemCatalog()
	nodes, _ := startBlobCluster(t, 3, func(string) blob.Catalog { return catalog }, nil)
	data := bytes.Repeat([]byte("0123456789"), 3000)
	resp, body := sendBlob(t, http.MethodPut, nodes[0].srv.URL+"/blob/sum", bytes.NewReader(data))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	value, v, _ := catalog.Get("sum")
	var m blob.Manifest
	if err := json.Unmarshal(value, &m); err != nil {
		t.Fatal(err)
	}
	m.SHA256 = strings.Repeat("0", 64)
	value, _ = json.Marshal(m)
	if _, err := catalog.Put(context.Background(), "sum", value, v); err != nil {
		t.Fatal(err)
	}
	got, err := http.Get(nodes[1].srv.URL + "/blob/sum")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	if got.StatusCode != http.StatusOK {
		t.Fatalf("status %d", got.StatusCode)
	}
	b, err := io.ReadAll(got.Body)
	if err == nil || len(b) >= len(data) {
		t.Fatalf("read %d of %d bytes, err %v: the answer was not cut", len(b), len(data), err)
	}
}

// TestMaxBlobTransfers: with every transfer slot taken by an upload, the
// next upload and shard stream answer 503 unavailable with Retry-After,
// while a manifest read and the shard listing are served; the slot is
// free again once the upload ends.
func TestMaxBlobTransfers(t *testing.T) {
	members := blob.NewInmemCluster()
	st, err := blob.New(blob.Config{Dir: filepath.Join(t.TempDir(), "blobs"), Members: members.Member("node0"),
		Catalog: blob.NewInmemCatalog(), StripeBytes: 4 * 1024, RepairInterval: -1, ScrubInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := newFakeServer(t, func(c *Config) { c.Blobs, c.MaxBlobTransfers = st, 1 })
	srv := httptest.NewServer(s.Handler())
	members.Join(blob.Peer{Name: "node0", HTTPAddr: srv.Listener.Addr().String()})
	t.Cleanup(func() { srv.Close(); _ = st.Close() })

	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/blob/slow", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if _, err := pw.Write(make([]byte, 10_000)); err != nil { // the upload is under way
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(s.transfers) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the upload never took its transfer slot")
		}
	}
	resp, body := sendBlob(t, http.MethodPut, srv.URL+"/blob/next", strings.NewReader("x"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"unavailable"`) {
		t.Fatalf("second upload with the slot taken: %d %q, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	resp, body = sendBlob(t, http.MethodGet, srv.URL+blob.ShardPathPrefix+"slow/1/0?from=0&to=1", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("shard stream with the slot taken: %d %q", resp.StatusCode, body)
	}
	if resp, body = sendBlob(t, http.MethodGet, srv.URL+"/blob/other/manifest", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("manifest read with the slot taken: %d %q, want 404", resp.StatusCode, body)
	}
	if resp, body = sendBlob(t, http.MethodGet, srv.URL+blob.ShardPathPrefix, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("shard listing with the slot taken: %d %q, want 200", resp.StatusCode, body)
	}
	pw.Close()
	if code := <-first; code != http.StatusCreated {
		t.Fatalf("the upload holding the slot answered %d, want 201", code)
	}
	if resp, body = sendBlob(t, http.MethodPut, srv.URL+"/blob/next", strings.NewReader("x")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload after the slot was freed: %d %q", resp.StatusCode, body)
	}
}

// TestBlobConditional: If-Match and If-None-Match on blob PUT, DELETE and
// GET compare with the blob's ETag (its quoted sha256) on the node that
// serves them; a refused write changes nothing.
func TestBlobConditional(t *testing.T) {
	nodes, _ := newBlobCluster(t, 3)
	url := nodes[0].srv.URL + "/blob/doc"
	put := func(value string, headers ...string) (*http.Response, []byte) {
		return sendBlob(t, http.MethodPut, url, strings.NewReader(value), headers...)
	}
	tagOf := func(value string) string {
		sum := sha256.Sum256([]byte(value))
		return `"` + hex.EncodeToString(sum[:]) + `"`
	}
	readBack := func(want string) {
		t.Helper()
		resp, body := sendBlob(t, http.MethodGet, nodes[1].srv.URL+"/blob/doc", nil)
		wantBlobStatus(t, resp, body, http.StatusOK, "")
		if string(body) != want {
			t.Fatalf("blob reads %q, want %q", body, want)
		}
	}

	resp, body := put("one", "If-Match", "*")
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)
	resp, body = sendBlob(t, http.MethodGet, url, nil)
	wantBlobStatus(t, resp, body, http.StatusNotFound, CodeNotFound)

	resp, body = put("one", "If-None-Match", "*")
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	resp, body = put("two", "If-None-Match", "*")
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)
	resp, body = put("two", "If-Match", tagOf("other"))
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)
	resp, body = put("two", "If-None-Match", "W/"+tagOf("one"))
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)
	readBack("one")
	resp, body = put("two", "If-Match", tagOf("one"))
	wantBlobStatus(t, resp, body, http.StatusCreated, "")
	readBack("two")

	// Reads: If-Match names another blob: 412; If-None-Match names this one: 304.
	resp, body = sendBlob(t, http.MethodGet, url, nil, "If-Match", tagOf("one"))
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)
	resp, body = sendBlob(t, http.MethodHead, url, nil, "If-Match", tagOf("one"))
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, "")
	resp, body = sendBlob(t, http.MethodGet, url, nil, "If-Match", tagOf("one")+", "+tagOf("two"))
	wantBlobStatus(t, resp, body, http.StatusOK, "")
	resp, body = sendBlob(t, http.MethodGet, url, nil, "If-None-Match", tagOf("two"))
	wantBlobStatus(t, resp, body, http.StatusNotModified, "")

	resp, body = sendBlob(t, http.MethodDelete, url, nil, "If-Match", tagOf("one"))
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)
	readBack("two")
	resp, body = sendBlob(t, http.MethodDelete, url, nil, "If-Match", tagOf("two"))
	wantBlobStatus(t, resp, body, http.StatusNoContent, "")
	resp, body = sendBlob(t, http.MethodDelete, url, nil, "If-Match", "*")
	wantBlobStatus(t, resp, body, http.StatusPreconditionFailed, CodePrecondition)

	for _, bad := range [][2]string{{"If-Match", `"abc"`}, {"If-Match", tagOf("a") + ", " + tagOf("b")},
		{"If-Match", "W/" + tagOf("a")}, {"If-None-Match", "nonsense"}, {"If-Match", strings.ToUpper(tagOf("a"))}} {
		resp, body := put("x", bad[0], bad[1])
		wantBlobStatus(t, resp, body, http.StatusBadRequest, CodeBadRequest)
		resp, body = sendBlob(t, http.MethodDelete, url, nil, bad[0], bad[1])
		wantBlobStatus(t, resp, body, http.StatusBadRequest, CodeBadRequest)
	}
	resp, body = sendBlob(t, http.MethodGet, url, nil)
	wantBlobStatus(t, resp, body, http.StatusNotFound, CodeNotFound)
}
