package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestE2EPeersOverTLS: three nodes that serve TLS reach each other over
// TLS: a node that returns catches up through a sync with a peer (its
// /readyz says so, rather than that the ready-sync timeout passed), and a
// blob's shards go to all three nodes and come back from another one.
func TestE2EPeersOverTLS(t *testing.T) {
	certs := makeCerts(t)
	pem, err := os.ReadFile(certs.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c := newClusterTLS(t, 3, roots, "--tls-cert", certs.cert, "--tls-key", certs.key, "--tls-peer-ca", certs.ca)

	c.stop(2, syscall.SIGTERM)
	for _, k := range []string{"tls/a", "tls/b", "tls/c"} {
		if err := c.tryPut(0, k, "v "+k, ""); err != nil {
			t.Fatal(err)
		}
	}
	c.start(2, 0)
	if _, body := c.waitReady(2); !strings.Contains(body, "synced with") {
		t.Fatalf("node-c ready without a sync with a peer: %s", body)
	}
	for _, k := range []string{"tls/a", "tls/b", "tls/c"} {
		if code, body, err := c.get(2, k); err != nil || code != http.StatusOK || body != "v "+k {
			t.Fatalf("node-c GET %s: %d %q %v", k, code, body, err)
		}
	}

	c.waitMembersAlive(formTimeout)
	blob := bytes.Repeat([]byte("disperse over tls "), 100_000)
	req, err := http.NewRequest(http.MethodPut, c.nodes[0].url+"/blob/tls-blob?data=2&parity=1", bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob PUT: %d %s", resp.StatusCode, b)
	}
	var man struct {
		Tolerates int `json:"tolerates"`
		Shards    []struct {
			Node string `json:"node"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatalf("blob PUT answer %s: %v", b, err)
	}
	holders := map[string]bool{}
	for _, sh := range man.Shards {
		holders[sh.Node] = true
	}
	if man.Tolerates != 1 || len(holders) != 3 {
		t.Fatalf("blob placed on %v, tolerates %d; want three nodes and 1 (shards reach the peers over TLS)", holders, man.Tolerates)
	}
	code, got, err := httpGet(c.hc, c.nodes[1].url+"/blob/tls-blob")
	if err != nil || code != http.StatusOK || got != string(blob) {
		t.Fatalf("blob GET on node-b: %d, %d bytes, %v; want 200 and the %d bytes put", code, len(got), err, len(blob))
	}
}
