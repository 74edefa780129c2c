package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cliRun is one run of the client binary.
type cliRun struct {
	stdout, stderr string
	code           int
}

// cliEnv is the environment of the client binary in these tests: no node
// setting and no DISPERSE_* variable from the machine, and a config file
// of the test's own.
func cliEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "DISPERSE_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") && !strings.HasPrefix(kv, "COMP_LINE=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBin runs the disperse binary with args, env and stdin.
func runBin(t testing.TB, env []string, stdin io.Reader, args ...string) cliRun {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errs.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// cliNode starts a node with default settings (but free ports) and
// returns an environment whose DISPERSE_ADDR points the client at it.
func cliNode(t testing.TB) (*proc, []string) {
	t.Helper()
	p := startNode(t, t.TempDir())
	p.waitReady(t)
	return p, cliEnv(t, "DISPERSE_ADDR="+p.url, "DISPERSE_CONFIG="+filepath.Join(t.TempDir(), "config.json"))
}

// oneErrorLine checks that a failure printed exactly one line, starting
// with prefix, free of JSON and escapes.
func oneErrorLine(t testing.TB, r cliRun, prefix string) {
	t.Helper()
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, prefix) ||
		strings.ContainsAny(r.stderr, "{}") || strings.Contains(r.stderr, `\u`) {
		t.Errorf("stderr %q: want one line starting %q", r.stderr, prefix)
	}
}

func TestCLICacheRoundTrip(t *testing.T) {
	needBinary(t)
	_, env := cliNode(t)
	run := func(stdin string, args ...string) cliRun {
		t.Helper()
		return runBin(t, env, strings.NewReader(stdin), args...)
	}
	must := func(r cliRun) cliRun {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		return r
	}
	must(run("", "put", "dir/k", "hello", "--ttl", "1h"))
	must(run("from stdin\n", "put", "dir/s"))
	must(run("", "put", "other", "x"))
	if r := must(run("", "get", "dir/k")); r.stdout != "hello" {
		t.Errorf("get: %q (no newline added when stdout is not a terminal)", r.stdout)
	}
	if r := must(run("", "get", "dir/s")); r.stdout != "from stdin\n" {
		t.Errorf("get of a value from stdin: %q", r.stdout)
	}
	var got struct {
		Key, Value, Version string
		ContentType         string  `json:"content_type"`
		ExpiresAt           *string `json:"expires_at"`
	}
	r := must(run("", "get", "dir/k", "--json"))
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Value != "hello" || got.Version == "" ||
		got.ExpiresAt == nil || !strings.HasPrefix(got.ContentType, "text/plain") {
		t.Errorf("get --json: %s %v", r.stdout, err)
	}
	// Binary bytes go through untouched (standard output is not a terminal).
	bin := "\x00\x01\xff\xfe binary \x00"
	must(run(bin, "put", "bin", "-"))
	if r := must(run("", "get", "bin")); r.stdout != bin {
		t.Errorf("binary value: %q", r.stdout)
	}
	must(run("", "del", "bin"))
	if r := must(run("", "ttl", "dir/k")); !strings.Contains(r.stdout, "expires at") {
		t.Errorf("ttl: %q", r.stdout)
	}
	if r := must(run("", "ttl", "dir/s")); r.stdout != "no expiry\n" {
		t.Errorf("ttl without expiry: %q", r.stdout)
	}
	if r := must(run("", "ls", "dir/")); r.stdout != "dir/k\ndir/s\n" {
		t.Errorf("ls dir/: %q", r.stdout)
	}
	if r := must(run("", "ls", "--limit", "1")); r.stdout != "dir/k\n" {
		t.Errorf("ls --limit 1: %q", r.stdout)
	}
	var list struct {
		Keys []string
		Next string
	}
	r = must(run("", "ls", "--json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || strings.Join(list.Keys, ",") != "dir/k,dir/s,other" {
		t.Errorf("ls --json: %s %v", r.stdout, err)
	}
	// A conditional put that fails is a 412, in one line.
	r = run("", "put", "dir/k", "new", "--if-none-match", "*")
	if r.code != 1 {
		t.Fatalf("put --if-none-match * on an existing key: exit %d", r.code)
	}
	oneErrorLine(t, r, `disperse put: key "dir/k": `)
	if !strings.Contains(r.stderr, "(412 precondition_failed)") {
		t.Errorf("412: %q", r.stderr)
	}
	must(run("", "del", "dir/k"))
	r = run("", "get", "dir/k")
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("get after del: exit %d, %q", r.code, r.stdout)
	}
	oneErrorLine(t, r, `disperse get: key "dir/k": `)
	if !strings.HasSuffix(r.stderr, "(404 not_found)\n") {
		t.Errorf("404: %q", r.stderr)
	}
	r = run("", "get", "dir/k", "--json")
	var je struct {
		Status int
		Code   string
	}
	if r.code != 1 || json.Unmarshal([]byte(r.stderr), &je) != nil || je.Status != 404 || je.Code != "not_found" {
		t.Errorf("get --json of a missing key: exit %d, %q", r.code, r.stderr)
	}
	if r := must(run("", "members", "--json")); !strings.Contains(r.stdout, `"name":"e2e"`) {
		t.Errorf("members --json: %s", r.stdout)
	}
	if r := must(run("", "members")); !strings.Contains(r.stdout, "e2e") || !strings.Contains(r.stdout, "alive") {
		t.Errorf("members: %s", r.stdout)
	}
	must(run("", "ready", "--timeout", "5s"))
}

// TestCLIUsage: usage errors are exit status 2 and one line; the command
// list has every command.
func TestCLIUsage(t *testing.T) {
	needBinary(t)
	env := cliEnv(t, "DISPERSE_ADDR=http://127.0.0.1:1")
	for _, args := range [][]string{
		{"get", "k", "--parity", "3"},
		{"get"},
		{"blob", "put", "b", "--data", "0"},
		{"blob", "put", "b", "--parity", "-1"},
		{"blob", "put", "b", "--data", "250", "--parity", "7"},
		{"put", "k", "v", "--ttl", "soon"},
		{"frobnicate"},
		{"get", "k", "--context", "nowhere"},
	} {
		r := runBin(t, env, nil, args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, r.code, exitUsage, r.stderr)
		}
		oneErrorLine(t, r, "disperse")
	}
	r := runBin(t, env, nil)
	if r.code != exitUsage {
		t.Errorf("no arguments: exit %d", r.code)
	}
	for _, cmd := range []string{"serve", "bench", "version", "get", "put", "del", "ttl", "ls", "members", "ready", "blob", "context", "completion"} {
		if !strings.Contains(r.stderr, "\n  "+cmd+" ") {
			t.Errorf("usage does not list %s:\n%s", cmd, r.stderr)
		}
	}
	if h := runBin(t, env, nil, "help"); h.code != 0 || h.stdout != r.stderr {
		t.Errorf("help: exit %d, not the same usage", h.code)
	}
	if h := runBin(t, env, nil, "help", "serve"); h.code != 0 || !strings.Contains(h.stdout, "--gossip-port") {
		t.Errorf("help serve: exit %d", h.code)
	}
	if h := runBin(t, env, nil, "blob", "put", "--help"); h.code != 0 || !strings.Contains(h.stdout, "--parity") {
		t.Errorf("blob put --help: exit %d", h.code)
	}
	if v := runBin(t, env, nil, "version"); v.code != 0 || !strings.HasPrefix(v.stdout, "disperse ") {
		t.Errorf("version: %q", v.stdout)
	}
	// A request that cannot reach the node is a failure (1), in one line.
	r = runBin(t, env, nil, "get", "k", "--timeout", "2s")
	if r.code != exitFailure {
		t.Errorf("unreachable node: exit %d", r.code)
	}
	oneErrorLine(t, r, `disperse get: key "k": `)
}

// TestCLICompletion: the script hands completion to the binary, which
// answers from its commands and flags.
func TestCLICompletion(t *testing.T) {
	needBinary(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := runBin(t, cliEnv(t), nil, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, binPath) {
			t.Errorf("completion %s: exit %d %q", sh, r.code, r.stdout)
		}
	}
	line := "disperse blob g"
	r := runBin(t, cliEnv(t, "COMP_LINE="+line), nil)
	if r.code != 0 || r.stdout != "get\n" {
		t.Errorf("completing %q: exit %d %q", line, r.code, r.stdout)
	}
	line = "disperse blob put x --par"
	if r := runBin(t, cliEnv(t, "COMP_LINE="+line), nil); r.stdout != "--parity\n" {
		t.Errorf("completing %q: %q", line, r.stdout)
	}
}

// TestCLIContexts: named contexts in the config file give the address;
// flags and variables win over them.
func TestCLIContexts(t *testing.T) {
	needBinary(t)
	node := startNode(t, t.TempDir())
	node.waitReady(t)
	home := t.TempDir()
	env := cliEnv(t, "XDG_CONFIG_HOME="+home) // the default config path under it
	run := func(args ...string) cliRun { t.Helper(); return runBin(t, env, nil, args...) }

	if r := run("context", "set", "local", "--addr", node.url, "--token", "s3cret-token"); r.code != 0 {
		t.Fatalf("context set: %d %s", r.code, r.stderr)
	}
	if r := run("context", "set", "nowhere", "--addr", "http://127.0.0.1:1"); r.code != 0 {
		t.Fatalf("context set: %d %s", r.code, r.stderr)
	}
	cfgPath := filepath.Join(home, "disperse", "config.json")
	st, err := os.Stat(cfgPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	// The first context set is the current one.
	if r := run("put", "k", "via-context"); r.code != 0 {
		t.Fatalf("put through the current context: %d %s", r.code, r.stderr)
	}
	r := run("get", "k", "--context", "nowhere", "--timeout", "2s")
	if r.code != exitFailure || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("--context nowhere: exit %d %q", r.code, r.stderr)
	}
	if r := run("context", "use", "nowhere"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run("get", "k", "--addr", node.url); r.code != 0 || r.stdout != "via-context" {
		t.Errorf("--addr over the context: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	withEnv := runBin(t, append(slices.Clone(env), "DISPERSE_ADDR="+node.url), nil, "get", "k")
	if withEnv.code != 0 || withEnv.stdout != "via-context" {
		t.Errorf("DISPERSE_ADDR over the context: exit %d %s", withEnv.code, withEnv.stderr)
	}
	r = run("context", "ls")
	if r.code != 0 || !hasLine(r.stdout, "* nowhere http://127.0.0.1:1") || strings.Contains(r.stdout, "s3cret") {
		t.Errorf("context ls:\n%s", r.stdout)
	}
	var views []struct {
		Name     string
		Current  bool
		TokenSet bool `json:"token_set"`
	}
	r = run("context", "ls", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil || len(views) != 2 || !views[0].TokenSet || !views[1].Current {
		t.Errorf("context ls --json: %s %v", r.stdout, err)
	}
	if r := run("context", "rm", "nowhere"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run("context", "use", "nowhere"); r.code != exitUsage {
		t.Errorf("use of a removed context: exit %d", r.code)
	}
	if r := run("context", "set", "fresh", "--token", "t"); r.code != exitUsage {
		t.Errorf("a new context without --addr: exit %d", r.code)
	}
}

// hasLine reports whether out has a line whose fields are those of want.
func hasLine(out, want string) bool {
	for line := range strings.Lines(out) {
		if strings.Join(strings.Fields(line), " ") == want {
			return true
		}
	}
	return false
}

// TestCLIBlobRoundTrip: a file goes up and comes back byte for byte.
func TestCLIBlobRoundTrip(t *testing.T) {
	needBinary(t)
	_, env := cliNode(t)
	dir := t.TempDir()
	data := make([]byte, 3<<20+123)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(data)
	in := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, env, nil, "blob", "put", "photo.bin", in, "--data", "2", "--parity", "1", "--json")
	var m struct {
		ID          string
		Size        int64
		Data        int
		Parity      int
		ContentType string `json:"content_type"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil || m.Size != int64(len(data)) || m.Data != 2 || m.Parity != 1 {
		t.Fatalf("blob put: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(dir, "out.bin")
	if r := runBin(t, env, nil, "blob", "get", "photo.bin", "-o", out); r.code != 0 {
		t.Fatalf("blob get: %d %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("downloaded file differs (%d bytes, %v)", len(b), err)
	}
	// From standard input, and to standard output.
	if r := runBin(t, env, strings.NewReader("small text blob\n"), "blob", "put", "note.txt", "-", "--content-type", "text/plain"); r.code != 0 {
		t.Fatalf("blob put -: %d %s", r.code, r.stderr)
	}
	if r := runBin(t, env, nil, "blob", "get", "note.txt"); r.code != 0 || r.stdout != "small text blob\n" {
		t.Fatalf("blob get to stdout: %d %q", r.code, r.stdout)
	}
	if r := runBin(t, env, nil, "blob", "ls"); r.code != 0 || !strings.Contains(r.stdout, "photo.bin") || !strings.Contains(r.stdout, "note.txt") {
		t.Errorf("blob ls: %s", r.stdout)
	}
	if r := runBin(t, env, nil, "blob", "ls", "pho", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"id":"photo.bin"`) || strings.Contains(r.stdout, "note.txt") {
		t.Errorf("blob ls pho --json: %s", r.stdout)
	}
	if r := runBin(t, env, nil, "blob", "stat", "photo.bin"); r.code != 0 || !strings.Contains(r.stdout, "2 data + 1 parity") {
		t.Errorf("blob stat: %s", r.stdout)
	}
	if r := runBin(t, env, nil, "blob", "del", "photo.bin"); r.code != 0 {
		t.Fatalf("blob del: %s", r.stderr)
	}
	missing := filepath.Join(dir, "missing.bin")
	r = runBin(t, env, nil, "blob", "get", "photo.bin", "-o", missing)
	if r.code != exitFailure {
		t.Fatalf("blob get after del: exit %d", r.code)
	}
	oneErrorLine(t, r, `disperse blob get: blob "photo.bin": `)
	noFileLeft(t, dir, "missing.bin")
}

// noFileLeft checks that nothing named name, or a temporary file of it, is
// in dir.
func noFileLeft(t testing.TB, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name) {
			t.Errorf("%s is left in %s", e.Name(), dir)
		}
	}
}

// TestCLIBlobGetNodeDies: the node dies in the middle of a download; the
// command fails and leaves no file under -o's name.
func TestCLIBlobGetNodeDies(t *testing.T) {
	needBinary(t)
	node, env := cliNode(t)
	data := make([]byte, 8<<20)
	rng := rand.NewChaCha8([32]byte{9})
	_, _ = rng.Read(data)
	if r := runBin(t, env, bytes.NewReader(data), "blob", "put", "big", "-"); r.code != 0 {
		t.Fatalf("blob put: %s", r.stderr)
	}
	// The download goes through a proxy that kills the node once 1 MiB of
	// the answer has passed.
	proxy := cutProxy(t, strings.TrimPrefix(node.url, "http://"), 1<<20, func() {
		_ = node.cmd.Process.Kill()
		<-node.done
	})
	dir := t.TempDir()
	r := runBin(t, cliEnv(t, "DISPERSE_ADDR=http://"+proxy), nil, "blob", "get", "big", "-o", filepath.Join(dir, "big.bin"), "--timeout", "5s")
	if r.code != exitFailure {
		t.Fatalf("blob get with the node gone: exit %d %s", r.code, r.stderr)
	}
	oneErrorLine(t, r, `disperse blob get: blob "big": `)
	noFileLeft(t, dir, "big.bin")
}

// cutProxy forwards TCP connections to target; once limit bytes of
// answers have passed it calls cut and closes the connection they passed
// on. Later connections pass through.
func cutProxy(t testing.TB, target string, limit int64, cut func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var passed atomic.Int64
	var done atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if !done.Load() && passed.Add(int64(n)) > limit && done.CompareAndSwap(false, true) {
							cut()
							return
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// slowReader hands out n chunks of size bytes, pausing every so often:
// a steady upload that takes longer than the client's timeout.
type slowReader struct {
	chunk, left int
	pause       time.Duration
	sent        bytes.Buffer
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause) // the pace of the source under test, not a wait for a condition
	n := min(len(p), r.chunk)
	for i := range p[:n] {
		p[i] = byte(r.left + i)
	}
	r.sent.Write(p[:n])
	r.left--
	return n, nil
}

// stallServer accepts connections and reads requests, and answers each
// with head (nothing when empty), then never anything more.
func stallServer(t *testing.T, head string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Read(make([]byte, 4096))
				if head != "" {
					_, _ = io.WriteString(c, head)
				}
				<-quit
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestCLITimeoutBoundsStallsNotTransfers: --timeout 1s lets an upload
// that keeps moving for longer succeed, while a node that stops answering
// (before its answer, or in the middle of a blob's body) fails the command
// with one line naming the timeout, and leaves no file behind.
func TestCLITimeoutBoundsStallsNotTransfers(t *testing.T) {
	needBinary(t)
	_, env := cliNode(t)
	src := &slowReader{chunk: 64 << 10, left: 12, pause: 250 * time.Millisecond} // 3 s in all
	start := time.Now()
	if r := runBin(t, env, src, "blob", "put", "slow", "-", "--timeout", "1s"); r.code != 0 {
		t.Fatalf("a steady upload longer than --timeout: exit %d %s", r.code, r.stderr)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the upload took %v, not longer than the timeout it must outlive", took)
	}
	dir := t.TempDir()
	if r := runBin(t, env, nil, "blob", "get", "slow", "-o", filepath.Join(dir, "slow")); r.code != 0 {
		t.Fatalf("blob get: %s", r.stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "slow")); !bytes.Equal(got, src.sent.Bytes()) {
		t.Fatalf("read back %d bytes, sent %d", len(got), src.sent.Len())
	}

	silent := stallServer(t, "")
	r := runBin(t, cliEnv(t, "DISPERSE_ADDR="+silent), nil, "get", "k", "--timeout", "1s")
	if r.code != exitFailure || !strings.Contains(r.stderr, "timeout") {
		t.Fatalf("get from a node that never answers: exit %d %q", r.code, r.stderr)
	}
	oneErrorLine(t, r, "disperse get: ")

	midBody := stallServer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nEtag: \""+strings.Repeat("0", 64)+
		"\"\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("x", 1000))
	r = runBin(t, cliEnv(t, "DISPERSE_ADDR="+midBody), nil, "blob", "get", "b", "-o", filepath.Join(dir, "b"), "--timeout", "1s")
	if r.code != exitFailure || !strings.Contains(r.stderr, "timeout") {
		t.Fatalf("blob get stalled in the body: exit %d %q", r.code, r.stderr)
	}
	oneErrorLine(t, r, `disperse blob get: `)
	noFileLeft(t, dir, "b")
}
