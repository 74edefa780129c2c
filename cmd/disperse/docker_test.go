package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The Docker tests start real containers of the image `make image` builds
// (named by DISPERSE_IMAGE) on a private Docker network, and drive them with
// the binary's own client commands through `docker exec`, so they work while
// a container is cut off from the network. Outside CI they skip when there
// is no image or no Docker engine; in CI (CI=true) that is a failure.

// dockerCluster is a set of containers of one test on one network.
type dockerCluster struct {
	t      testing.TB
	image  string
	prefix string
	subnet string // the network's first three octets
	names  []string
}

func requireDocker(t testing.TB) string {
	t.Helper()
	image := os.Getenv("DISPERSE_IMAGE")
	why := ""
	switch {
	case image == "":
		why = "DISPERSE_IMAGE is not set (make test builds the image and sets it)"
	case exec.Command("docker", "image", "inspect", image).Run() != nil:
		why = "image " + image + " is not built or no Docker engine is reachable"
	}
	if why == "" {
		return image
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("docker cluster tests must run in CI: %s", why)
	}
	t.Skipf("skipping the Docker cluster test: %s", why)
	return ""
}

// newDockerCluster starts n nodes that join the first, with short gossip
// intervals so failures are seen within a second or two.
func newDockerCluster(t *testing.T, n int, extraEnv ...string) *dockerCluster {
	t.Helper()
	image := requireDocker(t)
	if testing.Short() {
		t.Skip("skipping the Docker cluster test in -short mode")
	}
	d := &dockerCluster{t: t, image: image, prefix: fmt.Sprintf("dsp%d%d", os.Getpid(), time.Now().UnixNano()%100000)}
	t.Cleanup(d.remove)
	d.createNetwork()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	clusterKey := "CLUSTER_KEY=" + base64.StdEncoding.EncodeToString(key)
	// The image binds to 0.0.0.0, so a node needs a client token too; the
	// client commands run by docker exec take it from DISPERSE_TOKEN.
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	adminToken := hex.EncodeToString(token)
	for i := 1; i <= n; i++ {
		d.names = append(d.names, fmt.Sprintf("%s-n%d", d.prefix, i))
	}
	for i := range d.names {
		args := []string{"run", "-d", "--name", d.names[i], "--hostname", d.names[i],
			"--network", d.prefix, "--ip", d.ip(i), "-v", d.names[i] + ":/data",
			"-e", "NODE_NAME=" + d.names[i], "-e", "ADVERTISE_ADDR=" + d.ip(i),
			"-e", "PROBE_INTERVAL=200ms", "-e", "PROBE_TIMEOUT=100ms", "-e", "GOSSIP_INTERVAL=50ms",
			"-e", "LOG_LEVEL=debug", "-e", clusterKey, "-e", "AUTH_TOKEN=" + adminToken, "-e", "DISPERSE_TOKEN=" + adminToken}
		if i > 0 {
			args = append(args, "-e", "PEER="+d.ip(0)+":7946")
		}
		for _, e := range extraEnv {
			args = append(args, "-e", e)
		}
		d.docker(append(args, image)...)
	}
	d.waitAlive(n)
	return d
}

// createNetwork makes a network with a fixed subnet, so a container that is
// disconnected and connected again keeps its address.
func (d *dockerCluster) createNetwork() {
	d.t.Helper()
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		d.subnet = fmt.Sprintf("172.30.%d", (os.Getpid()+attempt*37)%250+1)
		_, err := d.tryDocker("network", "create", "--subnet", d.subnet+".0/24", d.prefix)
		if err == nil {
			return
		}
		lastErr = err
	}
	d.t.Fatalf("docker network create: %v", lastErr)
}

func (d *dockerCluster) ip(i int) string { return fmt.Sprintf("%s.%d", d.subnet, i+10) }

func (d *dockerCluster) remove() {
	if d.t.Failed() {
		for _, n := range d.names {
			out, _ := d.tryDocker("logs", "--tail", "60", n)
			d.t.Logf("logs of %s:\n%s", n, out)
		}
	}
	for _, n := range d.names {
		d.tryDocker("rm", "-f", "-v", n)
		d.tryDocker("volume", "rm", "-f", n)
	}
	d.tryDocker("network", "rm", d.prefix)
}

func (d *dockerCluster) tryDocker(args ...string) (string, error) {
	return d.tryDockerIn(nil, args...)
}

// tryDockerIn runs docker with stdin as its standard input.
func (d *dockerCluster) tryDockerIn(stdin io.Reader, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (d *dockerCluster) docker(args ...string) string {
	d.t.Helper()
	out, err := d.tryDocker(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// client runs `disperse ARGS` inside node i against that node.
func (d *dockerCluster) client(i int, args ...string) (string, error) {
	return d.tryDocker(append([]string{"exec", d.names[i], "/disperse"}, args...)...)
}

func (d *dockerCluster) put(i int, key, value string) {
	d.t.Helper()
	if _, err := d.client(i, "put", key, value); err != nil {
		d.t.Fatal(err)
	}
}

// waitValue waits until key reads value on every node listed.
func (d *dockerCluster) waitValue(key, value string, nodes ...int) {
	d.t.Helper()
	for _, i := range nodes {
		var got string
		var err error
		ok := poll(60*time.Second, func() bool {
			got, err = d.client(i, "get", key)
			return err == nil && got == value
		})
		if !ok {
			d.t.Fatalf("%s: key %q = %q (err %v), want %q", d.names[i], key, got, err, value)
		}
	}
}

// waitAlive waits until every running node sees n alive members.
func (d *dockerCluster) waitAlive(n int, nodes ...int) {
	d.t.Helper()
	if len(nodes) == 0 {
		for i := range d.names {
			nodes = append(nodes, i)
		}
	}
	for _, i := range nodes {
		var out string
		ok := poll(60*time.Second, func() bool {
			out, _ = d.client(i, "members", "--json")
			return strings.Count(out, `"state":"alive"`) == n
		})
		if !ok {
			d.t.Fatalf("%s does not see %d alive members: %s", d.names[i], n, out)
		}
	}
}

// poll calls cond until it holds or the time is up.
func poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDockerPartitionHeals cuts one node off the network, writes on both
// sides, reconnects it and checks that all three converge.
func TestDockerPartitionHeals(t *testing.T) {
	d := newDockerCluster(t, 3)
	d.put(0, "before", "b0")
	d.waitValue("before", "b0", 0, 1, 2)

	d.docker("network", "disconnect", d.prefix, d.names[2])
	d.waitAlive(2, 0, 1)
	d.put(0, "majority", "m1")
	d.put(2, "minority", "n1")
	d.put(2, "contested", "old-from-minority")
	d.put(0, "contested", "new-from-majority")
	if _, err := d.client(2, "del", "before"); err != nil {
		t.Fatal(err)
	}

	d.docker("network", "connect", "--ip", d.ip(2), d.prefix, d.names[2])
	d.waitAlive(3)
	d.waitValue("majority", "m1", 0, 1, 2)
	d.waitValue("minority", "n1", 0, 1, 2)
	d.waitValue("contested", "new-from-majority", 0, 1, 2)
	for i := range d.names {
		ok := poll(60*time.Second, func() bool {
			_, err := d.client(i, "get", "before")
			return err != nil && strings.Contains(err.Error(), "404")
		})
		if !ok {
			t.Fatalf("%s still has the key deleted on the other side", d.names[i])
		}
	}
}

// TestDockerKilledNodeRecovers SIGKILLs a node, writes while it is down,
// restarts it on its volume, and checks it recovered its own data from disk
// and caught up with what it missed.
func TestDockerKilledNodeRecovers(t *testing.T) {
	d := newDockerCluster(t, 3)
	for i := 0; i < 20; i++ {
		d.put(i%3, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i))
	}
	// Node-local writes reach no peer, so after the restart they can only
	// have come from the node's own disk.
	if _, err := d.client(1, "put", "--sync", "own", "on-disk"); err != nil {
		t.Fatal(err)
	}
	d.waitValue("k19", "v19", 1)

	d.docker("kill", "-s", "KILL", d.names[1])
	d.waitAlive(2, 0, 2)
	d.put(0, "missed", "while-down")
	d.put(2, "k00", "overwritten-while-down")

	d.docker("start", d.names[1])
	d.waitAlive(3)
	d.waitValue("own", "on-disk", 1)
	d.waitValue("missed", "while-down", 1)
	d.waitValue("k00", "overwritten-while-down", 1)
	for i := 1; i < 20; i++ {
		d.waitValue(fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i), 1)
	}
}

// TestDockerBlobSurvivesKilledHolder uploads a blob coded 2+1 over three
// containers (one shard on each), SIGKILLs one holder and reads identical
// bytes from the others.
func TestDockerBlobSurvivesKilledHolder(t *testing.T) {
	d := newDockerCluster(t, 3)
	data := make([]byte, 5<<20+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	out, err := d.tryDockerIn(bytes.NewReader(data), "exec", "-i", d.names[0], "/disperse", "blob", "put", "--json", "--data", "2", "--parity", "1", "photos", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"tolerates":1`) {
		t.Fatalf("manifest %s: want a blob that tolerates one lost node", out)
	}

	d.docker("kill", "-s", "KILL", d.names[2])
	d.waitAlive(2, 0, 1)
	for _, i := range []int{0, 1} {
		got, err := d.client(i, "blob", "get", "photos")
		if err != nil {
			t.Fatalf("%s: %v", d.names[i], err)
		}
		if sha256.Sum256([]byte(got)) != want {
			t.Fatalf("%s returned %d bytes that differ from the %d uploaded", d.names[i], len(got), len(data))
		}
	}
}
