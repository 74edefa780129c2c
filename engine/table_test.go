package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tb table
	want := map[string]*item{}
	for op := 0; op < 20000; op++ {
		key := fmt.Sprint("k", r.IntN(300))
		h := hashKey(key)
		if r.IntN(3) == 0 {
			tb.del(key, h)
			delete(want, key)
		} else if want[key] == nil {
			it := &item{}
			it.setRecord(key, nil, Version{}, 0)
			tb.put(it, h)
			want[key] = it
		}
		if tb.n != len(want) {
			t.Fatalf("op %d: %d keys, want %d", op, tb.n, len(want))
		}
		if op%97 == 0 {
			for i := 0; i < 300; i++ {
				k := fmt.Sprint("k", i)
				if got := tb.get(k, hashKey(k)); got != want[k] {
					t.Fatalf("op %d: get(%s) = %p, want %p", op, k, got, want[k])
				}
			}
		}
	}
	seen := 0
	tb.each(func(*item) { seen++ })
	if seen != len(want) {
		t.Fatalf("each saw %d, want %d", seen, len(want))
	}
	// Every item is walked in exactly the leaf LeafOf gives its key.
	inLeaves := 0
	for sub := range leavesPerShard {
		tb.eachInLeaf(sub, func(it *item) {
			inLeaves++
			if got := LeafOf(it.key()) / Buckets; got != sub {
				t.Fatalf("%q walked in leaf %d of its shard, LeafOf says %d", it.key(), sub, got)
			}
		})
	}
	if inLeaves != len(want) {
		t.Fatalf("the leaf walks saw %d items, want %d", inLeaves, len(want))
	}
}
