package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestE2EUnsignedPeerRequestsAreRefused: on a node with a cluster key,
// node-to-node routes answer 401 to a request without a valid signature,
// and the request changes nothing.
func TestE2EUnsignedPeerRequestsAreRefused(t *testing.T) {
	needBinary(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	p := startNode(t, t.TempDir(), "--cluster-key", base64.StdEncoding.EncodeToString(key))
	p.waitReady(t)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPut, "/internal/shards/forged", `{"id":"forged"}`},
		{http.MethodGet, "/internal/shards/", ""},
		{http.MethodPost, "/internal/cluster/push", "\x00"},
		{http.MethodPost, "/internal/cluster/tree", "\x00"},
	} {
		req, err := http.NewRequest(r.method, p.url+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Disperse-Node", "e2e")
		req.Header.Set("X-Disperse-Signature", strings.Repeat("00", 32))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Code string }
		if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Code != "unauthorized" {
			t.Fatalf("%s %s: %d %s, want 401 unauthorized", r.method, r.path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(p.url + "/blob/forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /blob/forged after a refused shard record: %d, want 404", resp.StatusCode)
	}
}
