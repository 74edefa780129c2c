package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of blobs: real nodes on loopback (see testCluster), on
// the default repair settings unless a test is about them.

// blobManifest is the part of a blob's manifest these tests read.
type blobManifest struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Tolerates int    `json:"tolerates"`
	Health    string `json:"health"`
	Shards    []struct {
		Index  int    `json:"index"`
		Node   string `json:"node"`
		Health string `json:"health"`
	} `json:"shards"`
}

// blobBytes returns n pseudo-random bytes for seed.
func blobBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// putBlob stores data as blob id through node i and returns its manifest;
// anything but a 201 fails the test.
func (c *testCluster) putBlob(i int, id string, data []byte) blobManifest {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPut, c.nodes[i].url+"/blob/"+id, bytes.NewReader(data))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s: PUT /blob/%s: %v", c.nodes[i].name, id, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("%s: PUT /blob/%s: %d %s", c.nodes[i].name, id, resp.StatusCode, body)
	}
	var m blobManifest
	if err := json.Unmarshal(body, &m); err != nil {
		c.t.Fatalf("PUT /blob/%s: %v: %s", id, err, body)
	}
	return m
}

// blobAnswer is what a node answered to a GET or HEAD of a blob.
type blobAnswer struct {
	status int
	body   []byte
	etag   string
	length string
	err    error // the body could not be read whole
}

func (c *testCluster) blobRequest(i int, method, id string) blobAnswer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.nodes[i].url+"/blob/"+id, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return blobAnswer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return blobAnswer{status: resp.StatusCode, body: body, etag: resp.Header.Get("Etag"),
		length: resp.Header.Get("Content-Length"), err: err}
}

// wantBlob checks that node i serves exactly data as blob id, to GET and
// to HEAD, and says what it got otherwise.
func (c *testCluster) wantBlob(i int, id string, data []byte) error {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	get := c.blobRequest(i, http.MethodGet, id)
	if get.err != nil || get.status != http.StatusOK || !bytes.Equal(get.body, data) || get.etag != etag {
		return fmt.Errorf("%s: GET /blob/%s: %d, %d bytes, ETag %s, err %v; want 200 with the %d bytes just stored",
			c.nodes[i].name, id, get.status, len(get.body), get.etag, get.err, len(data))
	}
	head := c.blobRequest(i, http.MethodHead, id)
	if head.err != nil || head.status != http.StatusOK || head.etag != etag || head.length != fmt.Sprint(len(data)) {
		return fmt.Errorf("%s: HEAD /blob/%s: %d, ETag %s, length %s, err %v", c.nodes[i].name, id, head.status, head.etag, head.length, head.err)
	}
	return nil
}

// Six nodes: a blob stored through one node is served by every other one
// at once, 50 times; a replaced blob gives its new bytes on every other
// node at once, 50 times; after a DELETE no node serves it. Every answer
// is checked, none retried.
func TestE2EBlobReadAfterWriteSixNodes(t *testing.T) {
	c := newCluster(t, 6)
	n := len(c.nodes)
	var wrong []string
	check := func(err error) {
		if err != nil {
			wrong = append(wrong, err.Error())
		}
	}
	for round := range 50 {
		id := fmt.Sprintf("fresh-%02d", round)
		data := blobBytes(64<<10+round*1013, uint64(round))
		writer := round % n
		c.putBlob(writer, id, data)
		for i := range n {
			if i != writer {
				check(c.wantBlob(i, id, data))
			}
		}
	}
	for round := range 50 {
		data := blobBytes(48<<10+round*777, uint64(1000+round))
		writer := round % n
		c.putBlob(writer, "replaced", data)
		for i := range n {
			if i != writer {
				check(c.wantBlob(i, "replaced", data))
			}
		}
	}
	for i := range n {
		code, err := httpDelete(c.hc, c.nodes[(i+1)%n].url+"/blob/fresh-0"+fmt.Sprint(i))
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("DELETE: %d %v", code, err)
		}
		for j := range n {
			got := c.blobRequest(j, http.MethodGet, "fresh-0"+fmt.Sprint(i))
			if got.status != http.StatusNotFound {
				wrong = append(wrong, fmt.Sprintf("%s: GET of a deleted blob: %d (%d bytes)", c.nodes[j].name, got.status, len(got.body)))
			}
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("%d wrong answers:\n\t%s", len(wrong), failures(wrong).Error())
	}
}

// The scrubber's settings reach the blob store.
func TestBlobConfigScrubSettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlobScrubInterval = 90 * time.Minute
	cfg.BlobScrubRate = 3 << 20
	got := blobConfig(cfg, nil)
	if got.ScrubInterval != 90*time.Minute || got.ScrubRate != 3<<20 {
		t.Fatalf("blob config %+v", got)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the test,
// or skips the test where that is not allowed (not root, no mount).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes a file in dir until only leave bytes are free, and
// returns it.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for n := free - leave; n > 0; n -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), n)]); err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
	}
	return path
}

// shardFiles lists what the blob directory under dataDir holds.
func shardFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "blobs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A node on a small tmpfs that fills: a blob PUT answers 507 disk_full and
// leaves no shard file; once space is freed the same PUT is a 201 without
// a restart; every acknowledged cache write and the blob survive a
// restart.
func TestE2EBlobDiskFull(t *testing.T) {
	needBinary(t)
	dir := mountTmpfs(t, 48<<20)
	p := startNode(t, dir, "--wal-segment-bytes", "1MiB")
	p.waitReady(t)
	hc := &http.Client{Timeout: 30 * time.Second}
	acked := map[string]string{}
	write := func(key, value string) {
		if code, err := httpPut(hc, p.url+"/cache/"+key, value); err == nil && code == http.StatusOK {
			acked[key] = value
		}
	}
	for k := range 20 {
		write(fmt.Sprintf("before/%d", k), fmt.Sprintf("value %d", k))
	}
	filler := fillDisk(t, dir, 4<<20)
	data := blobBytes(12<<20, 7)
	put := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPut, p.url+"/blob/big", bytes.NewReader(data))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put(); code != http.StatusInsufficientStorage || !strings.Contains(body, `"disk_full"`) {
		t.Fatalf("PUT on a full disk: %d %s, want 507 disk_full", code, body)
	}
	if files := shardFiles(t, dir); len(files) != 0 {
		t.Fatalf("shard files left after the failed PUT: %v", files)
	}
	for k := range 20 {
		write(fmt.Sprintf("full/%d", k), fmt.Sprintf("value %d", k))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, body := put(); code != http.StatusCreated {
		t.Fatalf("PUT once space is freed: %d %s", code, body)
	}
	for k := range 20 {
		write(fmt.Sprintf("after/%d", k), fmt.Sprintf("value %d", k))
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	p = startNode(t, dir, "--wal-segment-bytes", "1MiB")
	p.waitReady(t)
	for key, value := range acked {
		if code, body, err := httpGet(hc, p.url+"/cache/"+key); err != nil || code != http.StatusOK || body != value {
			t.Errorf("acknowledged %s after the restart: %d %q %v, want %q", key, code, body, err, value)
		}
	}
	resp, err := hc.Get(p.url + "/blob/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("blob after the restart: %d, %d bytes, %v", resp.StatusCode, len(got), err)
	}
}

// manifestOf reads GET /blob/{id}/manifest from node i.
func (c *testCluster) manifestOf(i int, id string) (blobManifest, error) {
	code, body, err := httpGet(c.hc, c.nodes[i].url+"/blob/"+id+"/manifest")
	if err != nil {
		return blobManifest{}, err
	}
	if code != http.StatusOK {
		return blobManifest{}, fmt.Errorf("GET /blob/%s/manifest: %d %s", id, code, body)
	}
	var m blobManifest
	err = json.Unmarshal([]byte(body), &m)
	return m, err
}

func (m blobManifest) holders() map[string]bool {
	out := map[string]bool{}
	for _, sh := range m.Shards {
		out[sh.Node] = true
	}
	return out
}

// A blob stored while two of six nodes were down has fewer than six
// holders; once they are back, within the rebuild setting and one repair
// pass, its manifest shows six distinct holders, all ok, and tolerates 2;
// then two other holders are killed and the blob reads back identical.
func TestE2EBlobSpreadsOntoReturningNodes(t *testing.T) {
	const rebuildAfter = 8 * time.Second
	c := newCluster(t, 6, "--blob-rebuild-after", rebuildAfter.String())
	c.stop(4, syscall.SIGTERM)
	c.stop(5, syscall.SIGTERM)
	data := blobBytes(3<<20+12345, 11)
	m := c.putBlob(0, "spread", data)
	if m.Tolerates >= 2 || len(m.holders()) != 4 {
		t.Fatalf("stored on four nodes: tolerates %d, holders %v", m.Tolerates, m.holders())
	}
	c.start(4, 0)
	c.start(5, 0)
	c.waitReady(4)
	c.waitReady(5)
	c.waitMembersAlive(formTimeout)
	back := time.Now()
	eventually(t, rebuildAfter+rebuildAfter/4+5*time.Second, "six distinct healthy holders", func() error {
		m, err := c.manifestOf(1, "spread")
		if err != nil {
			return err
		}
		if m.Tolerates != 2 || len(m.holders()) != 6 || m.Health != "healthy" {
			return fmt.Errorf("tolerates %d, health %s, shards %+v", m.Tolerates, m.Health, m.Shards)
		}
		return nil
	})
	t.Logf("spread %v after the nodes were back", time.Since(back).Round(time.Millisecond))
	killed := 0
	for i := 1; i < len(c.nodes) && killed < 2; i++ {
		c.stop(i, syscall.SIGKILL)
		killed++
	}
	if err := c.wantBlob(0, "spread", data); err != nil {
		t.Fatal(err)
	}
}

// The shard files of one holder are removed while it runs: its manifest
// shows the shard missing at once, the scrubber (every 2s here) finds the
// loss and rebuilds the shard, the manifest is healthy again, and reads
// stop reconstructing from parity.
func TestE2EBlobScrubberRebuildsRemovedShards(t *testing.T) {
	c := newCluster(t, 6, "--blob-scrub-interval", "2s")
	data := blobBytes(2<<20+99, 12)
	m := c.putBlob(0, "scrubbed", data)
	victim := slices.IndexFunc(c.nodes, func(n *clusterNode) bool { return n.name == m.Shards[0].Node })
	reader := (victim + 1) % len(c.nodes)
	files, _ := filepath.Glob(filepath.Join(c.nodes[victim].dataDir, "blobs", "scrubbed.*.shard"))
	if len(files) == 0 {
		t.Fatalf("%s holds no shard file of the blob", c.nodes[victim].name)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.manifestOf(reader, "scrubbed")
	if err != nil || got.Health != "degraded" || got.Shards[0].Health != "missing" {
		t.Fatalf("manifest right after the removal: %+v %v", got, err)
	}
	eventually(t, 30*time.Second, "the shard rebuilt", func() error {
		got, err := c.manifestOf(reader, "scrubbed")
		if err != nil {
			return err
		}
		if got.Health != "healthy" || got.Tolerates != 2 {
			return fmt.Errorf("health %s, tolerates %d, shards %+v", got.Health, got.Tolerates, got.Shards)
		}
		return nil
	})
	const reconstructed = "disperse_blob_reconstructed_stripes_total"
	before, _ := c.metric(reader, reconstructed)
	if err := c.wantBlob(reader, "scrubbed", data); err != nil {
		t.Fatal(err)
	}
	if after, _ := c.metric(reader, reconstructed); after != before {
		t.Fatalf("the read still reconstructed %v stripes", after-before)
	}
}

// With a cluster key, the shard transfers and manifest announcements
// between nodes are signed: a blob stored through one node is served by
// the others, replaced and deleted as without a key.
func TestE2EBlobWithClusterKey(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(blobBytes(32, 13))
	c := newCluster(t, 3, "--cluster-key", key)
	for round := range 3 {
		data := blobBytes(256<<10+round, uint64(20+round))
		c.putBlob(round, "keyed", data)
		for i := range c.nodes {
			if err := c.wantBlob(i, "keyed", data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, err := httpDelete(c.hc, c.nodes[1].url+"/blob/keyed"); err != nil || code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	for i := range c.nodes {
		if got := c.blobRequest(i, http.MethodGet, "keyed"); got.status != http.StatusNotFound {
			t.Fatalf("%s: GET after DELETE: %d", c.nodes[i].name, got.status)
		}
	}
}

// A blob PUT whose shard holder is killed mid-upload goes on without that
// shard (one lost, parity one): 201, tolerates 0 and the lost holder named
// as missing, and the blob reads back whole from the nodes left.
func TestE2EBlobPutGoesOnWhenAHolderDies(t *testing.T) {
	c := newCluster(t, 3)
	data := blobBytes(16<<20, 14)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, c.nodes[0].url+"/blob/degraded?data=2&parity=1", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	type answer struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := c.hc.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, body, err}
	}()
	// Once the node has taken the first half, its shard streams are open.
	if _, err := pw.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	c.stop(2, syscall.SIGKILL)
	if _, err := pw.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	a := <-done
	if a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("PUT with a holder killed mid-upload: %d %s %v, want 201", a.status, a.body, a.err)
	}
	var m blobManifest
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Tolerates != 0 {
		t.Fatalf("tolerates %d with one of three shards lost, want 0: %s", m.Tolerates, a.body)
	}
	if err := c.wantBlob(1, "degraded", data); err != nil {
		t.Fatal(err)
	}
	got, err := c.manifestOf(1, "degraded")
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, sh := range got.Shards {
		if sh.Node == c.nodes[2].name && sh.Health != "ok" {
			missing++
		}
	}
	if missing != 1 || got.Tolerates != 0 {
		t.Fatalf("manifest after the loss: tolerates %d, shards %+v; want node-c's shard not ok", got.Tolerates, got.Shards)
	}
}

// With --max-blob-transfers 1 a second blob transfer while one upload is
// streaming is answered 503 unavailable with Retry-After, and once the
// upload ends the next transfer is served. Cache requests are not held up.
func TestE2EMaxBlobTransfers(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--max-blob-transfers", "1")
	p.waitReady(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, p.url+"/blob/slow", pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	data := blobBytes(1<<20, 15)
	if _, err := pw.Write(data); err != nil { // the node is reading: the slot is taken
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(p.url + "/blob/slow")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("a second transfer: %d %s (Retry-After %q), want 503 unavailable with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if status, err := httpPut(c, p.url+"/cache/k", "v"); err != nil || status != http.StatusOK {
		t.Fatalf("a cache PUT during the transfer: %d %v", status, err)
	}
	pw.Close()
	if status := <-done; status != http.StatusCreated {
		t.Fatalf("the upload: %d", status)
	}
	status, got, err := httpGet(c, p.url+"/blob/slow")
	if err != nil || status != http.StatusOK || got != string(data) {
		t.Fatalf("GET after the upload: %d, %d bytes, %v", status, len(got), err)
	}
}
