package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// clientCommands are the subcommands that talk to a running node over its
// HTTP API. They exist for scripts and for containers that hold nothing but
// the binary.
var clientCommands = map[string]func(c *client, args []string) error{
	"get":     (*client).get,
	"put":     (*client).put,
	"del":     (*client).del,
	"members": (*client).members,
	"ready":   (*client).ready,
	"blob":    (*client).blob,
}

const clientUsage = `client commands (talk to a running node):
  disperse get KEY                      print the value of KEY
  disperse put KEY VALUE [--ttl 90s]    store VALUE (- reads it from standard input)
  disperse del KEY                      delete KEY
  disperse members                      list the cluster's members as JSON
  disperse ready                        wait until the node has recovered (up to --timeout)
  disperse blob put ID [FILE|-]         upload a blob (default: standard input);
                                        --data K --parity M choose its coding
  disperse blob get ID                  write a blob to standard output
  disperse blob del ID                  delete a blob
common flags: --addr URL (default http://127.0.0.1:$HTTP_PORT or :8000; https://... for TLS),
  --timeout 30s, --sync (X-Is-Sync: apply on that node only),
  --token TOKEN (default $DISPERSE_TOKEN), --cacert FILE (default $DISPERSE_CACERT: the CA
  that signed the node's certificate), --cert FILE --key FILE (default $DISPERSE_CERT,
  $DISPERSE_KEY: a client certificate, for nodes with --tls-client-ca)`

// runClient runs a client subcommand; it reports whether name is one.
func runClient(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) (bool, int) {
	cmd, ok := clientCommands[name]
	if !ok {
		return false, 0
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, clientUsage) }
	defaultAddr := "http://127.0.0.1:8000"
	if p := os.Getenv("HTTP_PORT"); p != "" {
		defaultAddr = "http://127.0.0.1:" + p
	}
	c := &client{stdin: stdin, stdout: stdout}
	fs.StringVar(&c.addr, "addr", defaultAddr, "node's HTTP address")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of the request")
	fs.DurationVar(&c.ttl, "ttl", 0, "expiry of a put (0: none)")
	fs.BoolVar(&c.sync, "sync", false, "X-Is-Sync: apply on that node only")
	fs.IntVar(&c.data, "data", 0, "blob put: data shards k (0: the node's default)")
	fs.IntVar(&c.parity, "parity", -1, "blob put: parity shards m (-1: the node's default)")
	var tc clientTLS
	fs.StringVar(&c.token, "token", os.Getenv("DISPERSE_TOKEN"), "bearer token (default $DISPERSE_TOKEN)")
	fs.StringVar(&tc.caFile, "cacert", os.Getenv("DISPERSE_CACERT"), "PEM CA that signed the node's certificate (default $DISPERSE_CACERT)")
	fs.StringVar(&tc.certFile, "cert", os.Getenv("DISPERSE_CERT"), "PEM client certificate (default $DISPERSE_CERT)")
	fs.StringVar(&tc.keyFile, "key", os.Getenv("DISPERSE_KEY"), "PEM key of --cert (default $DISPERSE_KEY)")
	if err := fs.Parse(interleaveFlags(args)); err != nil {
		return true, 2
	}
	c.addr = strings.TrimSuffix(c.addr, "/")
	if !strings.Contains(c.addr, "://") {
		c.addr = "http://" + c.addr
	}
	hc, err := tc.client()
	if err != nil {
		fmt.Fprintf(stderr, "disperse %s: %v\n", name, err)
		return true, 2
	}
	c.hc = hc
	if err := cmd(c, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "disperse %s: %v\n", name, err)
		return true, 1
	}
	return true, 0
}

// interleaveFlags moves flags after the positional arguments to the front,
// so that `disperse put k v --ttl 5s` reads as users expect.
func interleaveFlags(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-" || !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		if !strings.Contains(a, "=") && !isBoolFlag(a) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(flags, rest...)
}

func isBoolFlag(a string) bool { return strings.TrimLeft(a, "-") == "sync" }

type client struct {
	hc      *http.Client
	token   string // bearer token, "" for none
	addr    string
	timeout time.Duration
	ttl     time.Duration
	sync    bool
	data    int // blob data shards, 0 for the node's default
	parity  int // blob parity shards, -1 for the node's default
	stdin   io.Reader
	stdout  io.Writer
}

// do sends one request and returns the response when its status is want.
func (c *client) do(method, path string, body io.Reader, want int, hdr http.Header) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.sync {
		req.Header.Set("X-Is-Sync", "true")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode != want {
		defer cancel()
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, cancel, nil
}

// copyTo sends a request and copies a successful answer's body to stdout.
func (c *client) copyTo(method, path string, body io.Reader, want int, hdr http.Header) error {
	resp, cancel, err := c.do(method, path, body, want, hdr)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	_, err = io.Copy(c.stdout, resp.Body)
	return err
}

func cachePath(key string) string { return "/cache/" + url.PathEscape(key) }

func (c *client) get(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: disperse get KEY")
	}
	return c.copyTo(http.MethodGet, cachePath(args[0]), nil, http.StatusOK, nil)
}

func (c *client) put(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: disperse put KEY VALUE|-")
	}
	var body io.Reader = strings.NewReader(args[1])
	if args[1] == "-" {
		body = c.stdin
	}
	path := cachePath(args[0])
	if c.ttl > 0 {
		path += "?ttl=" + url.QueryEscape(c.ttl.String())
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	if err := c.copyTo(http.MethodPut, path, body, http.StatusOK, hdr); err != nil {
		return err
	}
	_, err := fmt.Fprintln(c.stdout)
	return err
}

func (c *client) del(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: disperse del KEY")
	}
	return c.copyTo(http.MethodDelete, cachePath(args[0]), nil, http.StatusNoContent, nil)
}

func (c *client) members(args []string) error {
	if len(args) != 0 {
		return errors.New("usage: disperse members")
	}
	if err := c.copyTo(http.MethodGet, "/cluster/members", nil, http.StatusOK, nil); err != nil {
		return err
	}
	_, err := fmt.Fprintln(c.stdout)
	return err
}

// ready polls /readyz until the node answers 200 or the timeout passes.
func (c *client) ready(args []string) error {
	if len(args) != 0 {
		return errors.New("usage: disperse ready")
	}
	deadline := time.Now().Add(c.timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		// The deadline bounds each request too: a listener that accepts
		// and never answers does not hold the command past --timeout.
		var resp *http.Response
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr+"/readyz", nil)
		if err == nil {
			resp, err = c.hc.Do(req)
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last: %v)", c.addr, c.timeout, errOrStatus(err, resp))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clientTLS are the TLS files of the client commands.
type clientTLS struct {
	caFile, certFile, keyFile string
}

// client is the HTTP client of the commands: the default one, or one that
// trusts caFile and presents the client certificate.
func (t clientTLS) client() (*http.Client, error) {
	if t.caFile == "" && t.certFile == "" && t.keyFile == "" {
		return http.DefaultClient, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.caFile != "" {
		b, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", t.caFile)
		}
	}
	if t.certFile != "" || t.keyFile != "" {
		pair, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert %s with --key %s: %w", t.certFile, t.keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}

func errOrStatus(err error, resp *http.Response) any {
	if err != nil {
		return err
	}
	return resp.Status
}

func (c *client) blob(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: disperse blob put|get|del ID [FILE|-]")
	}
	path := "/blob/" + url.PathEscape(args[1])
	switch {
	case args[0] == "get" && len(args) == 2:
		return c.copyTo(http.MethodGet, path, nil, http.StatusOK, nil)
	case args[0] == "del" && len(args) == 2:
		return c.copyTo(http.MethodDelete, path, nil, http.StatusNoContent, nil)
	case args[0] == "put" && len(args) <= 3:
		var body io.Reader = c.stdin
		if len(args) == 3 && args[2] != "-" {
			f, err := os.Open(args[2])
			if err != nil {
				return err
			}
			defer f.Close()
			body = f
		}
		q := url.Values{}
		if c.data > 0 {
			q.Set("data", strconv.Itoa(c.data))
		}
		if c.parity >= 0 {
			q.Set("parity", strconv.Itoa(c.parity))
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		resp, cancel, err := c.do(http.MethodPut, path, body, http.StatusCreated, hdr)
		if err != nil {
			return err
		}
		defer cancel()
		defer resp.Body.Close()
		var m json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", m)
		return err
	}
	return errors.New("usage: disperse blob put|get|del ID [FILE|-]")
}
