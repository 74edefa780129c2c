package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/httpd"
)

// Test secrets: long enough to be accepted.
const (
	testAdminToken = "admin-0123456789abcdef"
	testReadToken  = "read-0123456789abcdef"
	testWriteToken = "write-0123456789abcdef"
	// testClusterKey satisfies the cluster-key rule of a non-loopback bind.
	testClusterKey = "MDEyMzQ1Njc4OWFiY2RlZg=="
)

// writeTokenFile writes a token file with one token of each scope.
func writeTokenFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	body := "# name scope token\nops admin " + testAdminToken + "\nreader read " + testReadToken +
		"\n\nwriter write " + testWriteToken + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecuritySettings(t *testing.T) {
	tokens := writeTokenFile(t)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(Config) bool
	}{
		{"auth file", []string{"--auth-file", tokens}, nil, func(c Config) bool {
			return c.AuthFile == tokens && len(c.AuthFileTokens) == 3 && c.AuthFileTokens[1] == httpd.Token{Name: "reader", Scope: "read", Secret: testReadToken}
		}},
		{"admin token from the environment", nil, map[string]string{"AUTH_TOKEN": testAdminToken}, func(c Config) bool { return c.AuthToken == testAdminToken }},
		{"switches alone", []string{"--metrics-public", "--insecure"}, nil, func(c Config) bool { return c.MetricsPublic && c.Insecure }},
		{"switch set false", []string{"--metrics-public=false"}, map[string]string{"METRICS_PUBLIC": "true"}, func(c Config) bool { return !c.MetricsPublic }},
		{"switch from the environment", nil, map[string]string{"METRICS_PUBLIC": "1"}, func(c Config) bool { return c.MetricsPublic }},
		{"limits", []string{"--rate-limit", "250.5", "--rate-burst", "1000", "--max-conns", "100"},
			map[string]string{"MAX_BLOB_TRANSFERS": "8", "BODY_IDLE_TIMEOUT": "5s", "MAX_BODY_MEMORY": "64MiB"}, func(c Config) bool {
				return c.RateLimit == 250.5 && c.RateBurst == 1000 && c.MaxConns == 100 && c.MaxBlobTransfers == 8 &&
					c.BodyIdleTimeout == 5*time.Second && c.MaxBodyMemory == 64<<20
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe(tt.args, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("got %+v", cfg)
			}
		})
	}
}

func TestSecurityBadSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badLine := write("bad-line", "ops admin "+testAdminToken+"\n# fine\nreader sudo "+testReadToken+"\n")
	dupSecret := write("dup", "ops admin "+testAdminToken+"\n")
	pems := makeCerts(t)
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--auth-file", missing}, nil, "bad setting --auth-file: " + missing + ": no such file or directory"},
		{nil, map[string]string{"AUTH_FILE": badLine}, `bad setting --auth-file (from AUTH_FILE): ` + badLine + ` line 3: token "reader": scope "sudo" is not read, write or admin`},
		{nil, map[string]string{"AUTH_TOKEN": "hunter2"}, `bad setting --auth-token (from AUTH_TOKEN): token "auth-token" is 7 characters, fewer than the 16 required (make one with: openssl rand -hex 32)`},
		{[]string{"--auth-file", dupSecret, "--auth-token", testAdminToken}, nil, `bad setting --auth-token: with --auth-file: tokens "ops" and "auth-token" have the same secret`},
		{[]string{"--rate-limit", "-1"}, nil, `bad setting --rate-limit: "-1" is not a number of requests per second (0 for no limit)`},
		{nil, map[string]string{"RATE_LIMIT": "fast"}, `bad setting --rate-limit (from RATE_LIMIT): "fast" is not a number of requests per second (0 for no limit)`},
		{[]string{"--max-conns", "0"}, nil, `bad setting --max-conns: 0 is out of range 1..16777216`},
		{nil, map[string]string{"MAX_BLOB_TRANSFERS": "0"}, `bad setting --max-blob-transfers (from MAX_BLOB_TRANSFERS): 0 is out of range 1..1048576`},
		{[]string{"--body-idle-timeout", "0s"}, nil, `bad setting --body-idle-timeout: 0s must be positive`},
		{[]string{"--max-body-memory", "1KiB"}, nil, `bad setting --max-body-memory: "1KiB" is less than 65536 bytes`},
		{[]string{"--metrics-public=maybe"}, nil, `bad setting --metrics-public: "maybe" is not true or false`},
		{[]string{"--tls-cert", pems.cert}, nil, `bad setting --tls-cert: needs --tls-key`},
		{[]string{"--tls-key", pems.key}, nil, `bad setting --tls-key: needs --tls-cert`},
		{[]string{"--tls-client-ca", pems.ca}, nil, `bad setting --tls-client-ca: needs --tls-cert and --tls-key`},
		{[]string{"--tls-cert", missing, "--tls-key", pems.key}, nil, "bad setting --tls-cert: certificate " + missing + " with key " + pems.key + ": no such file or directory"},
		{[]string{"--tls-cert", pems.cert, "--tls-key", pems.key, "--tls-client-ca", badLine}, nil, "bad setting --tls-client-ca: CA file " + badLine + ": no PEM certificate in it"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseServe(tt.args, envOf(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			for _, secret := range []string{testAdminToken, testReadToken, "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %s", err)
				}
			}
		})
	}
}

// protectedLine is the whole refusal of a node on 0.0.0.0:8000 without
// client authentication.
const protectedLine = "refusing to start: --bind 0.0.0.0 is not a loopback address and no client token is set, " +
	"so anyone who reaches port 8000 could read and change every key; set --auth-token or --auth-file " +
	"(or --tls-client-ca), bind to 127.0.0.1, or pass --insecure on a network you trust"

func TestProtectedMode(t *testing.T) {
	tokens := writeTokenFile(t)
	pems := makeCerts(t)
	exposed := []string{"--bind", "0.0.0.0", "--cluster-key", testClusterKey}
	if _, err := parseServe(exposed, envOf(nil)); err == nil || err.Error() != protectedLine {
		t.Fatalf("exposed without tokens: %v\nwant %s", err, protectedLine)
	}
	for name, extra := range map[string][]string{
		"admin token":         {"--auth-token", testAdminToken},
		"token file":          {"--auth-file", tokens},
		"client certificates": {"--tls-cert", pems.cert, "--tls-key", pems.key, "--tls-client-ca", pems.ca},
		"insecure":            {"--insecure"},
	} {
		if _, err := parseServe(append(exposed, extra...), envOf(nil)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bind := range []string{"127.0.0.1", "::1", "127.0.0.2"} {
		if _, err := parseServe([]string{"--bind", bind}, envOf(nil)); err != nil {
			t.Errorf("loopback %s: %v", bind, err)
		}
	}
	// TLS alone authenticates nobody.
	if _, err := parseServe(append(exposed, "--tls-cert", pems.cert, "--tls-key", pems.key), envOf(nil)); err == nil {
		t.Error("TLS without tokens or client certificates passed protected mode")
	}
}

// TestE2EProtectedModeRefuses drives the binary: exposed without tokens it
// exits 2 with the one line, before it listens; with a token it serves.
func TestE2EProtectedModeRefuses(t *testing.T) {
	needBinary(t)
	port := freePort(t)
	cmd := exec.Command(binPath, "serve", "--bind", "0.0.0.0", "--http-port", "8000", "--gossip-port", "0", "--data-dir", t.TempDir())
	cmd.Env = append(cleanEnv(), "CLUSTER_KEY="+testClusterKey)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit: %v, want status %d\n%s", err, exitUsage, stderr.String())
	}
	if want := "disperse serve: " + protectedLine + "\n"; stderr.String() != want {
		t.Fatalf("stderr %q\nwant %q", stderr.String(), want)
	}

	dir := t.TempDir()
	cmd = exec.Command(binPath, "serve", "--bind", "0.0.0.0", "--http-port", strconv.Itoa(port), "--gossip-port", "0",
		"--data-dir", dir, "--name", "guarded")
	cmd.Env = append(cleanEnv(), "CLUSTER_KEY="+testClusterKey, "AUTH_TOKEN="+testAdminToken)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cli := func(args ...string) (string, int) {
		var out bytes.Buffer
		code := mainArgs(append(args, "--addr", base, "--timeout", "5s"), nil, &out, &out)
		return out.String(), code
	}
	waitFor(t, 30*time.Second, "the guarded node to be ready", func() bool { _, code := cli("ready"); return code == 0 })
	if out, code := cli("put", "k", "v"); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("put without a token: %d %s", code, out)
	}
	if out, code := cli("put", "k", "v", "--token", testAdminToken); code != 0 {
		t.Fatalf("put with the token: %d %s", code, out)
	}
	if strings.Contains(logs.String(), testAdminToken) {
		t.Fatal("the token is in the node's log")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
}

// TestClientTokensAndTLS: a node with a token file and TLS is used by the
// client commands with --token and --cacert (or the variables), and a
// client without a token or without the CA gets nowhere.
func TestClientTokensAndTLS(t *testing.T) {
	pems := makeCerts(t)
	cfg := testConfig(t)
	cfg.AuthFile = writeTokenFile(t)
	var err error
	if cfg.AuthFileTokens, err = httpd.LoadTokenFile(cfg.AuthFile); err != nil {
		t.Fatal(err)
	}
	cfg.TLSCert, cfg.TLSKey = pems.cert, pems.key
	cfg.LogLevel = slog.LevelInfo // the listening line
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	base := "https://" + strings.TrimPrefix(waitListening(t, &logs), "http://")
	cli := func(args ...string) (string, int) {
		var out bytes.Buffer
		code := mainArgs(append(args, "--addr", base, "--timeout", "5s"), strings.NewReader(""), &out, &out)
		return out.String(), code
	}
	waitFor(t, 30*time.Second, "ready over TLS", func() bool { _, code := cli("ready", "--cacert", pems.ca); return code == 0 })

	if out, code := cli("put", "k", "v", "--cacert", pems.ca, "--token", testWriteToken); code != 0 {
		t.Fatalf("put with a write token: %d %s", code, out)
	}
	t.Setenv("DISPERSE_TOKEN", testReadToken)
	t.Setenv("DISPERSE_CACERT", pems.ca)
	if out, code := cli("get", "k"); code != 0 || out != "v" {
		t.Fatalf("get with the read token from DISPERSE_TOKEN: %d %q", code, out)
	}
	if out, code := cli("put", "k", "w"); code != 1 || !strings.Contains(out, "403") || !strings.Contains(out, "forbidden") {
		t.Fatalf("put with a read token: %d %s", code, out)
	}
	if out, code := cli("members"); code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("members with a read token: %d %s", code, out)
	}
	if out, code := cli("members", "--json", "--token", testAdminToken); code != 0 || !strings.Contains(out, `"name":"test"`) {
		t.Fatalf("members with the admin token: %d %s", code, out)
	}
	if out, code := cli("get", "k", "--token", ""); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("get without a token: %d %s", code, out)
	}
	t.Setenv("DISPERSE_CACERT", "")
	if out, code := cli("get", "k"); code != 1 || !strings.Contains(out, "certificate") {
		t.Fatalf("get without trusting the node's CA: %d %s", code, out)
	}
	if out, code := cli("get", "k", "--cacert", filepath.Join(t.TempDir(), "none")); code != 2 || !strings.Contains(out, "--cacert") {
		t.Fatalf("get with a missing CA file: %d %s", code, out)
	}
	for _, secret := range []string{testAdminToken, testReadToken, testWriteToken} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a token is in the node's log")
		}
	}
}

// certFiles are PEM files of a CA and a node certificate it signed for
// 127.0.0.1 and localhost.
type certFiles struct {
	ca, cert, key string
}

// makeCerts makes a CA and a node certificate in a temporary directory.
func makeCerts(t testing.TB) certFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := certFiles{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "node.pem"), key: filepath.Join(dir, "node-key.pem")}
	for path, block := range map[string]*pem.Block{f.ca: {Type: "CERTIFICATE", Bytes: caDER},
		f.cert: {Type: "CERTIFICATE", Bytes: der}, f.key: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}
