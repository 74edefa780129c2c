package engine

import (
	"testing"
	"time"
)

func TestHead(t *testing.T) {
	cfg, clock := ttlConfig(t)
	e := openTest(t, cfg)
	expired := put("marker", "v", ver(4, 0, 1))
	expired.ExpiresAt = clock.Now().Add(-time.Second).UnixNano()
	localNewer := put("both", "local", ver(9, 0, 1))
	localNewer.Local = true
	localDel := del("hidden", ver(9, 0, 2))
	localDel.Local = true
	mustApply(t, e,
		put("value", "v", ver(1, 0, 1)),
		put("gone", "v", ver(1, 0, 1)), del("gone", ver(2, 0, 3)),
		expired,
		put("both", "cluster", ver(5, 0, 1)), localNewer,
		put("hidden", "cluster", ver(5, 0, 1)), localDel,
		put("older-lost", "v", ver(7, 0, 1)), put("older-lost", "late", ver(6, 0, 9)),
	)
	for _, c := range []struct {
		key  string
		want Version
		ok   bool
	}{
		{"absent", Version{}, false},
		{"value", ver(1, 0, 1), true},
		{"gone", ver(2, 0, 3), true},
		{"marker", ver(4, 0, 1), true},
		{"both", ver(9, 0, 1), true},
		{"hidden", ver(9, 0, 2), true},
		{"older-lost", ver(7, 0, 1), true},
	} {
		if v, ok := e.Head(c.key); v != c.want || ok != c.ok {
			t.Errorf("Head(%q) = %v, %v; want %v, %v", c.key, v, ok, c.want, c.ok)
		}
	}
}

func TestMaxVersion(t *testing.T) {
	cfg, clock := ttlConfig(t)
	e := openTest(t, cfg)
	if v := e.MaxVersion(); !v.IsZero() {
		t.Fatalf("MaxVersion of an empty engine = %v", v)
	}
	steps := []struct {
		ent  Entry
		want Version
	}{
		{put("a", "v", ver(5, 0, 1)), ver(5, 0, 1)},
		{put("b", "v", ver(3, 0, 9)), ver(5, 0, 1)},                         // older: no change
		{put("a", "v", ver(5, 0, 2)), ver(5, 0, 2)},                         // same time, higher node
		{put("a", "v", ver(4, 0, 9)), ver(5, 0, 2)},                         // lost against a
		{del("c", ver(6, 1, 0)), ver(6, 1, 0)},                              // a tombstone
		{put("d", "v", ver(6, 0, 7)), ver(6, 1, 0)},                         // higher node, older time
		{Entry{Key: "e", Local: true, Version: ver(8, 0, 1)}, ver(8, 0, 1)}, // a local write
	}
	for i, s := range steps {
		mustApply(t, e, s.ent)
		if got := e.MaxVersion(); got != s.want {
			t.Fatalf("step %d: MaxVersion = %v, want %v", i, got, s.want)
		}
		above := s.want
		above.Node++
		if e.AboveMax(s.want) || !e.AboveMax(above) {
			t.Fatalf("step %d: AboveMax(%v) = %v, AboveMax(%v) = %v; want false, true", i, s.want, e.AboveMax(s.want), above, e.AboveMax(above))
		}
	}
	// The newest version of all is a tombstone that is collected as the
	// engine opens again (its TTL has passed by then): it still counts, as
	// the snapshot load and the log replay meet it.
	gone := ver(10, 0, 1)
	mustApply(t, e, del("z", gone))
	crashDir := crashCopy(t, cfg.Dir)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	clock.ns.Store(time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	for _, dir := range []string{cfg.Dir, crashDir} {
		c := cfg
		c.Dir = dir
		r := openTest(t, c)
		if _, ok := r.Head("z"); ok {
			t.Fatalf("%s: the tombstone was not collected at Open", dir)
		}
		if got := r.MaxVersion(); got != gone {
			t.Fatalf("%s: MaxVersion after Open = %v, want %v", dir, got, gone)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaxVersionConcurrent: concurrent notes end at the largest version,
// and a reader never sees the maximum go down.
func TestMaxVersionConcurrent(t *testing.T) {
	var m maxVersion
	const writers, notes = 4, 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last Version
		for range writers * notes {
			v := m.get()
			if v.Compare(last) < 0 {
				t.Errorf("maximum went from %v down to %v", last, v)
				return
			}
			last = v
		}
	}()
	finished := make(chan struct{}, writers)
	for w := range writers {
		go func() {
			for i := range notes {
				m.note(Version{Time: uint64(i / 3), Node: uint64((i*7 + w) % 5)})
			}
			finished <- struct{}{}
		}()
	}
	for range writers {
		<-finished
	}
	<-done
	if got, want := m.get(), (Version{Time: (notes - 1) / 3, Node: 4}); got != want {
		t.Fatalf("maximum %v, want %v", got, want)
	}
}
