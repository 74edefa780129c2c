package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerCompose starts docker-compose.yml as a user would, with an env
// file made from .env.example: the three nodes form a cluster, run as the
// unprivileged user with a restart policy, turn healthy, and answer a
// client without the token 401. Without the secrets compose refuses to
// start. Free host ports keep it from colliding with anything running.
func TestDockerCompose(t *testing.T) {
	image := requireDocker(t)
	if testing.Short() {
		t.Skip("skipping the Docker compose test in -short mode")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docker-compose is not installed, and CI needs it")
		}
		t.Skip("docker-compose is not installed")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	key, token := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	env := strings.NewReplacer(
		"DISPERSE_ADMIN_TOKEN=\n", "DISPERSE_ADMIN_TOKEN="+hex.EncodeToString(token)+"\n",
		"DISPERSE_CLUSTER_KEY=\n", "DISPERSE_CLUSTER_KEY="+base64.StdEncoding.EncodeToString(key)+"\n",
	).Replace(string(example))
	env += "DISPERSE_IMAGE=" + image + "\nDISPERSE_PORT_1=\nDISPERSE_PORT_2=\nDISPERSE_PORT_3=\n"
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("dspc%d%d", os.Getpid(), time.Now().UnixNano()%100000)
	compose := func(envFile string, args ...string) (string, error) {
		full := append([]string{"--env-file", envFile, "-p", project, "-f", filepath.Join(root, "docker-compose.yml")}, args...)
		cmd := exec.Command("docker-compose", full...)
		// The shell's variables win over the env file's: leave ours out.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "DISPERSE_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose(envFile, "logs", "--tail", "40")
			t.Logf("logs:\n%s", out)
		}
		if out, err := compose(envFile, "down", "-v", "--timeout", "5"); err != nil {
			t.Logf("docker-compose down: %v\n%s", err, out)
		}
	})

	// Without the secrets, compose refuses and names what is missing.
	bare := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(bare, example, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := compose(bare, "config"); err == nil || !strings.Contains(out, "DISPERSE_") {
		t.Fatalf("compose with the empty example: %v\n%s", err, out)
	}

	if out, err := compose(envFile, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	exec1 := func(args ...string) (string, error) {
		out, err := compose(envFile, append([]string{"exec", "-T", "disperse1", "/disperse"}, args...)...)
		return out, err
	}
	var out string
	if !poll(90*time.Second, func() bool {
		out, _ = exec1("members", "--json")
		return strings.Count(out, `"state":"alive"`) == 3
	}) {
		t.Fatalf("the three nodes do not see each other: %s", out)
	}
	if out, err := exec1("put", "k", "v"); err != nil {
		t.Fatalf("put with the token: %v %s", err, out)
	}
	if out, err := exec1("get", "k", "--token", ""); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("get without the token: %v %s", err, out)
	}
	ids, err := compose(envFile, "ps", "-q")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range strings.Fields(ids) {
		var state string
		ok := poll(90*time.Second, func() bool {
			o, err := exec.Command("docker", "inspect", "--format",
				"{{.Config.User}} {{.HostConfig.RestartPolicy.Name}} {{.State.Health.Status}}", id).Output()
			state = strings.TrimSpace(string(o))
			return err == nil && state == "10001:10001 unless-stopped healthy"
		})
		if !ok {
			t.Fatalf("container %s: %q, want user 10001, restart unless-stopped, healthy", id, state)
		}
	}
}
