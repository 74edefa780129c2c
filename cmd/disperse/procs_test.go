package main

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/disperse/disperse/wal"
)

func TestApplyProcs(t *testing.T) {
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(def) })
	for _, c := range []struct {
		mode wal.SyncMode
		env  string
		want int
	}{
		{wal.SyncAlways, "", def + 1},
		{wal.SyncAlways, "0", def + 1},   // not a setting the runtime takes
		{wal.SyncAlways, "two", def + 1}, // nor this
		{wal.SyncAlways, "3", def},
		{wal.SyncEverySecond, "", def},
		{wal.SyncNever, "", def},
	} {
		runtime.GOMAXPROCS(def)
		applyProcs(c.mode, c.env)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("fsync %v, GOMAXPROCS=%q: %d processors, want %d", c.mode, c.env, got, c.want)
		}
	}
}

// TestE2EProcsFollowFsync: the binary on defaults (--fsync always) runs one
// processor more than with --fsync never, and a GOMAXPROCS in its
// environment decides in either mode.
func TestE2EProcsFollowFsync(t *testing.T) {
	needBinary(t)
	procs := func(env string, extra ...string) float64 {
		t.Helper()
		p := startNodeWith(t, t.TempDir(), func(c *exec.Cmd) {
			var kept []string
			for _, kv := range c.Env {
				if !strings.HasPrefix(kv, "GOMAXPROCS=") {
					kept = append(kept, kv)
				}
			}
			if env != "" {
				kept = append(kept, "GOMAXPROCS="+env)
			}
			c.Env = kept
		}, extra...)
		p.waitReady(t)
		return metricValue(t, p, "go_sched_gomaxprocs_threads")
	}
	always, never := procs(""), procs("", "--fsync", "never")
	if never < 1 || always != never+1 {
		t.Fatalf("GOMAXPROCS %v on defaults and %v with --fsync never, want one more on defaults", always, never)
	}
	if got := procs("1"); got != 1 {
		t.Fatalf("GOMAXPROCS=1 in the environment, on defaults: %v processors", got)
	}
}
