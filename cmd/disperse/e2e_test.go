package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the disperse binary TestMain builds for the end-to-end tests;
// empty with -short, where those tests skip.
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "disperse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "disperse")
	build := exec.Command(goTool(), "build", "-o", binPath, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the disperse binary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// needBinary skips end-to-end tests under -short.
func needBinary(t testing.TB) {
	t.Helper()
	if binPath == "" {
		t.Skip("end-to-end test: skipped with -short")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a port free on 127.0.0.1 for TCP and UDP (gossip needs
// both), picked at random below the kernel's ephemeral range (32768 and
// up on Linux), and never the same one twice in this process. A port the
// kernel handed out from that range could be given again, between this
// check and the node's bind, as the local end of any process's outgoing
// connection; one below it is only taken by a bind, and the ones this
// process handed out are kept off the next picks.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if portsGiven[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no free TCP+UDP port")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and a
// reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one `disperse serve` process.
type proc struct {
	cmd    *exec.Cmd
	url    string // base URL of its HTTP API
	resp   string // host:port of its Redis protocol listener
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, once done
}

// cleanEnv is the environment without any node setting, so the machine's
// environment (a PORT of its own, say) cannot change a test.
func cleanEnv() []string {
	names := map[string]bool{}
	for _, s := range settings() {
		names[s.env] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !names[k] {
			env = append(env, kv)
		}
	}
	return env
}

// startNode starts `disperse serve` on dataDir and free ports with extra
// flags; the test's end kills it if it still runs.
func startNode(t testing.TB, dataDir string, extra ...string) *proc {
	t.Helper()
	return startNodeWith(t, dataDir, nil, extra...)
}

// startNodeWith is startNode with prep, when not nil, given the command
// to change before it starts.
func startNodeWith(t testing.TB, dataDir string, prep func(*exec.Cmd), extra ...string) *proc {
	t.Helper()
	httpPort, gossipPort, respPort := freePort(t), freePort(t), freePort(t)
	args := append([]string{"serve", "--name", "e2e", "--bind", "127.0.0.1",
		"--http-port", fmt.Sprint(httpPort), "--gossip-port", fmt.Sprint(gossipPort),
		"--resp-port", fmt.Sprint(respPort), "--data-dir", dataDir, "--log-format", "json"}, extra...)
	p := &proc{
		cmd:    exec.Command(binPath, args...),
		url:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		resp:   fmt.Sprintf("127.0.0.1:%d", respPort),
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Env = cleanEnv()
	p.cmd.Stderr = p.stderr
	if prep != nil {
		prep(p.cmd)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("node log (%s):\n%s", dataDir, tail(p.stderr.String(), 40))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits for GET /readyz to answer 200.
func (p *proc) waitReady(t testing.TB) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz", func() bool {
		if p.exited() {
			t.Fatalf("node exited before it was ready: %v\n%s", p.err, p.stderr.String())
		}
		resp, err := http.Get(p.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("node still running after %v", d)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func (p *proc) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		t.Fatal(err)
	}
}

// logLine returns the first JSON log line whose msg is msg.
func (p *proc) logLine(msg string) (map[string]any, bool) {
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m, true
		}
	}
	return nil, false
}

func httpPut(c *http.Client, url, value string) (int, error) {
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(value))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// httpGet returns the status and body of GET url.
func httpGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestE2EBadSetting: a bad setting from the environment is one line naming
// the flag and the variable, and exit status 2.
func TestE2EBadSetting(t *testing.T) {
	needBinary(t)
	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(cleanEnv(), "SNAPSHOT_INTERVAL=often")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit: %v, want status %d", err, exitUsage)
	}
	want := "disperse serve: bad setting --snapshot-interval (from SNAPSHOT_INTERVAL): \"often\" is not a duration (e.g. 300ms, 5s, 1h)\n"
	if stderr.String() != want {
		t.Errorf("stderr %q\nwant %q", stderr.String(), want)
	}
}

// TestE2ELockedDirAndCleanStop: a second node on a data directory in use
// fails with one line and a non-zero status; SIGTERM stops the first with
// status 0, after a last snapshot, and its data is there after a restart.
func TestE2ELockedDirAndCleanStop(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	a := startNode(t, dir, "--fsync", "never")
	a.waitReady(t)
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 50 {
		if code, err := httpPut(c, fmt.Sprintf("%s/cache/k%d", a.url, i), fmt.Sprintf("v%d", i)); err != nil || code != http.StatusOK {
			t.Fatalf("PUT: %d %v", code, err)
		}
	}

	b := startNode(t, dir)
	if code := b.wait(t, 30*time.Second); code == 0 {
		t.Fatal("second node on the same data dir exited 0")
	}
	msg := strings.TrimRight(b.stderr.String(), "\n")
	lines := strings.Split(msg, "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "disperse serve: data dir ") || !strings.Contains(last, "locked") {
		t.Errorf("last line %q: want the locked data dir named", last)
	}
	for _, l := range lines[:len(lines)-1] {
		if strings.Contains(l, `"level":"ERROR"`) {
			t.Errorf("more than one line about the failure: %s", l)
		}
	}

	a.signal(t, syscall.SIGTERM)
	if code := a.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit status %d\n%s", code, a.stderr.String())
	}
	if _, ok := a.logLine("stopped"); !ok {
		t.Errorf("no stopped line in the log")
	}

	a2 := startNode(t, dir)
	a2.waitReady(t)
	for i := range 50 {
		code, body, err := httpGet(c, fmt.Sprintf("%s/cache/k%d", a2.url, i))
		if err != nil || code != http.StatusOK || body != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%d after restart: %d %q %v", i, code, body, err)
		}
	}
	rec, ok := a2.logLine("recovered")
	if !ok {
		t.Fatal("no recovered line in the log")
	}
	// Close wrote a last snapshot covering the whole log, so nothing is
	// replayed from the log.
	if rec["log_records"] != 0.0 || rec["entries"] != 50.0 {
		t.Errorf("recovered %v: want 50 entries, none from the log", rec)
	}
	a2.signal(t, syscall.SIGINT)
	if code := a2.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("SIGINT: exit status %d", code)
	}
}

// TestE2ETimerSlackOnEveryThread: a node started with the defaults runs
// every thread at a timer slack of 1 ms (set by running the binary again,
// in the same process), and with --timer-slack 0 at the slack it was
// started with.
func TestE2ETimerSlackOnEveryThread(t *testing.T) {
	needBinary(t)
	if runtime.GOOS != "linux" {
		t.Skip("timer slack is a Linux thread attribute")
	}
	own, err := os.ReadFile("/proc/self/timerslack_ns")
	if err != nil {
		t.Skipf("this kernel does not show timer slack: %v", err)
	}
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{nil, "1000000"},
		{[]string{"--timer-slack", "0"}, strings.TrimSpace(string(own))},
	} {
		t.Run(fmt.Sprintf("flags %q", c.flags), func(t *testing.T) {
			p := startNode(t, t.TempDir(), c.flags...)
			p.waitReady(t)
			checkThreadSlack(t, p.cmd.Process.Pid, c.want)
		})
	}
}

// checkThreadSlack fails the test unless every thread of pid, and there
// are several, has a timer slack of want nanoseconds.
func checkThreadSlack(t *testing.T, pid int, want string) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		// A thread's slack is shown under its own id, not in the task folder.
		b, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("thread %s of %d has a timer slack of %s ns, want %s", task.Name(), pid, got, want)
		}
	}
	if len(tasks) < 2 {
		t.Errorf("%d threads in %d, want the runtime's several", len(tasks), pid)
	}
}

// TestE2ERemovedBinary: a node whose binary file is gone from its path by
// the time it runs itself again for the timer slack (removed, or replaced
// by an upgrade in place) runs the very file it started from, and lets go
// of that file's start-up pages. The binary is removed before the node
// starts, which runs it through a descriptor still open on it.
func TestE2ERemovedBinary(t *testing.T) {
	needBinary(t)
	if runtime.GOOS != "linux" {
		t.Skip("timer slack and code pages are Linux matters")
	}
	if _, err := os.ReadFile("/proc/self/timerslack_ns"); err != nil {
		t.Skipf("this kernel does not show timer slack: %v", err)
	}
	b, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "disperse")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	p := startNodeWith(t, t.TempDir(), func(c *exec.Cmd) {
		c.Path, c.ExtraFiles = "/proc/self/fd/3", []*os.File{f}
	})
	p.waitReady(t)
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid)); err != nil || !strings.HasSuffix(exe, " (deleted)") {
		t.Fatalf("the node runs %q (%v), want the removed file", exe, err)
	}
	checkThreadSlack(t, p.cmd.Process.Pid, "1000000")
	checkCodeReleased(t, p)
}

// checkCodeReleased waits for p's line saying it let go of its binary's
// start-up pages (it follows the ready line) and fails the test unless
// fewer were resident after than before.
func checkCodeReleased(t *testing.T, p *proc) {
	t.Helper()
	waitFor(t, 10*time.Second, "the code pages released line", func() bool {
		_, ok := p.logLine("code pages released")
		return ok
	})
	l, _ := p.logLine("code pages released")
	before, _ := l["resident_bytes_before"].(float64)
	after, _ := l["resident_bytes_after"].(float64)
	if before <= 0 || after >= before {
		t.Fatalf("code pages resident %v bytes before the release and %v after", before, after)
	}
}
