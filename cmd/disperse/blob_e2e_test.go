package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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
