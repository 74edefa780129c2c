package httpd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate signed by ca, for the server (with the
// loopback address) or for a client, and returns its PEM and its key's.
func (ca *testCA) issue(t testing.TB, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// writeFile writes b to name in dir and returns its path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsFiles are the PEM files of a node with TLS, made in a test.
type tlsFiles struct {
	ca                   *testCA
	cert, key, clientCA  string
	clientCert, clientKy []byte
}

func makeTLSFiles(t testing.TB) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t, "disperse test CA")
	cert, key := ca.issue(t, "node", true)
	ccert, ckey := ca.issue(t, "client", false)
	return tlsFiles{ca: ca, cert: writeFile(t, dir, "node.pem", cert), key: writeFile(t, dir, "node-key.pem", key),
		clientCA: writeFile(t, dir, "ca.pem", ca.pem), clientCert: ccert, clientKy: ckey}
}

// tlsClient trusts ca and presents the client certificate given, if any.
func tlsClient(t testing.TB, ca *testCA, certPEM, keyPEM []byte, mod func(*tls.Config)) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if mod != nil {
		mod(cfg)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

// getStatus is the status of GET url with an optional bearer token.
func getStatus(c *http.Client, url, secret string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestTLSEndToEnd: with a certificate, the API speaks TLS 1.2 or later
// over HTTP/1.1 with the tokens as usual, and plain HTTP gets nowhere.
func TestTLSEndToEnd(t *testing.T) {
	f := makeTLSFiles(t)
	cfg, err := LoadTLS(f.cert, f.key, "")
	if err != nil {
		t.Fatal(err)
	}
	ls := startLive(t, func(c *Config) { c.Tokens = testTokens(t) }, ListenerConfig{TLS: cfg})
	client := tlsClient(t, f.ca, nil, nil, nil)
	if code, err := getStatus(client, ls.url+"/cache/k", readSecret); err != nil || code != http.StatusNotFound {
		t.Fatalf("GET over TLS with a token: %d %v", code, err)
	}
	if code, err := getStatus(client, ls.url+"/cache/k", ""); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("GET over TLS without a token: %d %v", code, err)
	}
	resp, err := client.Get(ls.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("answer over %s, TLS %+v: want HTTP/1.1 over TLS 1.2+", resp.Proto, resp.TLS)
	}
	// A client that offers only TLS 1.1 is refused at the handshake.
	old := tlsClient(t, f.ca, nil, nil, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 })
	if _, err := getStatus(old, ls.url+"/healthz", ""); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	// A client that does not trust the node's CA refuses it.
	other := newTestCA(t, "another CA")
	if _, err := getStatus(tlsClient(t, other, nil, nil, nil), ls.url+"/healthz", ""); err == nil {
		t.Fatal("a client trusting another CA accepted the node's certificate")
	}
	// Plain HTTP on the TLS port gets no answer of the API.
	if code, err := getStatus(http.DefaultClient, "http://"+ls.addr+"/healthz", ""); err == nil && code == http.StatusOK {
		t.Fatal("plain HTTP was served on the TLS port")
	}
}

// TestTLSClientCertificates: with a client CA, a client without a
// certificate, or with one from another CA, is refused at the handshake;
// one with a certificate from the CA is served.
func TestTLSClientCertificates(t *testing.T) {
	f := makeTLSFiles(t)
	cfg, err := LoadTLS(f.cert, f.key, f.clientCA)
	if err != nil {
		t.Fatal(err)
	}
	ls := startLive(t, nil, ListenerConfig{TLS: cfg})
	if code, err := getStatus(tlsClient(t, f.ca, f.clientCert, f.clientKy, nil), ls.url+"/healthz", ""); err != nil || code != http.StatusOK {
		t.Fatalf("with a client certificate from the CA: %d %v", code, err)
	}
	if _, err := getStatus(tlsClient(t, f.ca, nil, nil, nil), ls.url+"/healthz", ""); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	rogue := newTestCA(t, "rogue CA")
	rcert, rkey := rogue.issue(t, "intruder", false)
	if _, err := getStatus(tlsClient(t, f.ca, rcert, rkey, nil), ls.url+"/healthz", ""); err == nil {
		t.Fatal("a client with a certificate from another CA was served")
	}
}

// TestTLSConnLimit: past the connection limit a TLS client gets the 503
// answer over TLS.
func TestTLSConnLimit(t *testing.T) {
	f := makeTLSFiles(t)
	cfg, err := LoadTLS(f.cert, f.key, "")
	if err != nil {
		t.Fatal(err)
	}
	ls := startLive(t, nil, ListenerConfig{TLS: cfg, MaxConns: 1})
	holder := tlsClient(t, f.ca, nil, nil, nil)
	if code, err := getStatus(holder, ls.url+"/healthz", ""); err != nil || code != http.StatusOK {
		t.Fatalf("first client: %d %v", code, err)
	}
	second := tlsClient(t, f.ca, nil, nil, nil)
	if code, err := getStatus(second, ls.url+"/healthz", ""); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("second client past the limit: %d %v, want 503", code, err)
	}
	holder.CloseIdleConnections()
	waitUntil(t, 10*time.Second, "the second client to be served", func() bool {
		code, err := getStatus(second, ls.url+"/healthz", "")
		return err == nil && code == http.StatusOK
	})
}

// TestLoadTLSErrors: each bad file or combination is one line naming it.
func TestLoadTLSErrors(t *testing.T) {
	f := makeTLSFiles(t)
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage.pem", []byte("not a certificate\n"))
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		cert, key, ca string
		want          string
	}{
		{f.cert, "", "", "a certificate and its key go together: set both or neither"},
		{"", f.key, "", "a certificate and its key go together: set both or neither"},
		{"", "", f.clientCA, "client certificates need TLS: set the node's certificate and key too"},
		{missing, f.key, "", "certificate " + missing + " with key " + f.key + ": no such file or directory"},
		{garbage, f.key, "", "certificate " + garbage + " with key " + f.key + ": tls: failed to find any PEM data in certificate input"},
		{f.cert, f.cert, "", "certificate " + f.cert + " with key " + f.cert + ": tls: found a certificate rather than a key in the PEM for the private key"},
		{f.cert, f.key, missing, "CA file " + missing + ": no such file or directory"},
		{f.cert, f.key, garbage, "CA file " + garbage + ": no PEM certificate in it"},
	} {
		_, err := LoadTLS(c.cert, c.key, c.ca)
		if err == nil || err.Error() != c.want {
			t.Errorf("LoadTLS(%q, %q, %q): %v\nwant %s", c.cert, c.key, c.ca, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error on more than one line: %q", err)
		}
	}
	if cfg, err := LoadTLS("", "", ""); cfg != nil || err != nil {
		t.Fatalf("no files: %v %v, want no TLS", cfg, err)
	}
}
