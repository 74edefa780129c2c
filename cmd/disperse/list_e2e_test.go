package main

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/client"
)

// TestE2EListInOrderAcrossRestart: keys written in a counter's order (k0,
// k1, ... lands inside full leaves of the ordered index, which pass keys
// on to their neighbours) and then a third of them deleted list in key
// order, page by page, on defaults, and again after a SIGKILL and a
// restart that rebuilt the index from the snapshot and the log.
func TestE2EListInOrderAcrossRestart(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	p := startNode(t, dir)
	p.waitReady(t)
	const n = 3000
	pipeSets(t, p, "l-", n, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		key := fmt.Sprint("l-", i)
		if i%3 == 0 {
			if err := c.Delete(ctx, key, nil); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want = append(want, key)
	}
	slices.Sort(want)
	listAll := func(c *client.Client) []string {
		var keys []string
		after := ""
		for {
			page, err := c.List(ctx, "l-", after, 250)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, page.Keys...)
			if page.Next == "" {
				return keys
			}
			after = page.Next
		}
	}
	check := func(when string, got []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("%s: %d keys listed, want %d; first difference at %d", when, len(got), len(want), i)
		}
	}
	check("before the restart", listAll(c))

	p.signal(t, syscall.SIGKILL)
	p.wait(t, time.Minute)
	p = startNode(t, dir)
	p.waitReady(t)
	if c, err = client.New(p.url); err != nil {
		t.Fatal(err)
	}
	check("after a restart", listAll(c))
}
