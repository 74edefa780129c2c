package resp

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// twoNodes starts two joined nodes and waits until each sees the other.
func twoNodes(t *testing.T) (*testNode, *testNode) {
	t.Helper()
	a := startNode(t, nil)
	b := startNode(t, nil, a.node.GossipAddr())
	waitFor(t, 10*time.Second, "the two nodes to see each other", func() bool {
		alive := func(n *testNode) int {
			c := 0
			for _, m := range n.node.Members() {
				if m.State == "alive" {
					c++
				}
			}
			return c
		}
		return alive(a) == 2 && alive(b) == 2
	})
	return a, b
}

// TestNodeLocalAndReplication: writes over RESP reach the other node;
// with CLIENT NODELOCAL on they stay on the node that took them.
func TestNodeLocalAndReplication(t *testing.T) {
	a, b := twoNodes(t)
	ra, rb := a.client(t), b.client(t)
	ra.Set(ctx, "shared", "1", 0)
	waitFor(t, 10*time.Second, "the write on the other node", func() bool { return rb.Get(ctx, "shared").Val() == "1" })

	c := ra.Conn()
	defer c.Close()
	if v, _ := c.Do(ctx, "CLIENT", "NODELOCAL").Text(); v != "off" {
		t.Errorf("CLIENT NODELOCAL: %q", v)
	}
	if err := c.Do(ctx, "CLIENT", "NODELOCAL", "on").Err(); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "mine", "local", 0)
	c.Incr(ctx, "shared")
	if info, _ := c.Do(ctx, "CLIENT", "INFO").Text(); !strings.Contains(info, "nodelocal=1") {
		t.Errorf("CLIENT INFO: %q", info)
	}
	c.Do(ctx, "CLIENT", "NODELOCAL", "off")
	c.Set(ctx, "after", "x", 0)
	// Once a later replicated write has arrived, the node-local ones would
	// have too, had they been sent.
	waitFor(t, 10*time.Second, "the replicated write", func() bool { return rb.Get(ctx, "after").Val() == "x" })
	if n, _ := rb.Exists(ctx, "mine").Result(); n != 0 {
		t.Error("a node-local SET reached the other node")
	}
	if v, _ := rb.Get(ctx, "shared").Result(); v != "1" {
		t.Errorf("a node-local INCR reached the other node: %q", v)
	}
	if v, _ := c.Get(ctx, "shared").Result(); v != "2" {
		t.Errorf("the node-local INCR on its own node: %q", v)
	}
}

// TestIncrOnTwoNodes: INCRs of one key sent to two nodes at once are each
// atomic on their node and every one is answered; between nodes the newest
// write wins, so the nodes agree in the end on one value, at most the sum
// (README, "Atomicity").
func TestIncrOnTwoNodes(t *testing.T) {
	a, b := twoNodes(t)
	const each = 100
	var wg sync.WaitGroup
	for _, n := range []*testNode{a, b} {
		r := n.client(t, func(o *redis.Options) { o.PoolSize = 4 })
		for range 4 {
			wg.Go(func() {
				for range each / 4 {
					if err := r.Incr(ctx, "hits").Err(); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	ra, rb := a.client(t), b.client(t)
	var va, vb int
	waitFor(t, 20*time.Second, "the nodes to agree", func() bool {
		va, _ = ra.Get(ctx, "hits").Int()
		vb, _ = rb.Get(ctx, "hits").Int()
		return va == vb
	})
	// An increment on one node can be overwritten by the other node's
	// newer write of a smaller count, so the count lies anywhere from 1
	// to the sum.
	if va < 1 || va > 2*each {
		t.Errorf("hits %d after %d INCRs on each of two nodes", va, each)
	}
	t.Logf("%d INCRs on each of two nodes: both hold %d", each, va)
}
