package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func newTestItem(key string) *item {
	it := &item{hidx: -1}
	it.setRecord(key, nil, Version{}, 0)
	return it
}

// check compares o with want (sorted keys) by a full walk, walks from a
// few keys, and checks the leaves' invariants.
func (o *ordered) check(t testing.TB, want []string) {
	t.Helper()
	if o.len() != len(want) {
		t.Fatalf("len %d, want %d", o.len(), len(want))
	}
	var got []string
	o.ascend("", func(it *item) bool { got = append(got, it.key()); return true })
	if !slices.Equal(got, want) {
		t.Fatalf("walk gives %d keys, want %d (first difference near %v)", len(got), len(want), firstDiff(got, want))
	}
	prevFence, first := "", true
	o.top.Ascend(func(r fenceRef) bool {
		l := r.l
		if first != (l.fence == "") || (!first && l.fence <= prevFence) {
			t.Fatalf("fence %q after %q", l.fence, prevFence)
		}
		if l.n > 0 && l.items[0].key() < l.fence {
			t.Fatalf("leaf with fence %q holds %q", l.fence, l.items[0].key())
		}
		for i := l.n; i < leafCap; i++ {
			if l.items[i] != nil {
				t.Fatalf("leaf %q keeps an item past its count", l.fence)
			}
		}
		prevFence, first = l.fence, false
		return true
	})
	for _, from := range []string{"", "k5", "k50", "zz"} {
		var part []string
		o.ascend(from, func(it *item) bool { part = append(part, it.key()); return len(part) < 10 })
		i, _ := slices.BinarySearch(want, from)
		if w := want[i:min(i+10, len(want))]; !slices.Equal(part, w) {
			t.Fatalf("from %q: %v, want %v", from, part, w)
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%d: %q/%q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("index %d", min(len(a), len(b)))
}

// TestOrderedMatchesSortedKeys drives the set with random inserts and
// deletes against a sorted slice.
func TestOrderedMatchesSortedKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	o := newOrdered()
	items := map[string]*item{}
	var want []string
	// Keys at random, and runs up and down from the last key: full
	// leaves then get keys at either end and in between.
	last := 0
	for step := range 100000 {
		switch r.IntN(4) {
		case 0:
			last = (last + 1) % 5000
		case 1:
			last = (last + 4999) % 5000
		default:
			last = r.IntN(5000)
		}
		key := fmt.Sprintf("k%04d", last)
		if it := items[key]; it != nil && r.IntN(5) < 2+step/35000 {
			o.delete(it)
			delete(items, key)
			i, _ := slices.BinarySearch(want, key)
			want = slices.Delete(want, i, i+1)
		} else if it == nil {
			it = newTestItem(key)
			o.insert(it)
			items[key] = it
			i, _ := slices.BinarySearch(want, key)
			want = slices.Insert(want, i, key)
		}
		if step%2000 == 0 {
			o.check(t, want)
		}
	}
	o.check(t, want)
	for key, it := range items {
		o.delete(it)
		delete(items, key)
	}
	o.check(t, nil)
	if o.top.Len() != 1 {
		t.Fatalf("%d leaves left in an empty set", o.top.Len())
	}
}

// TestOrderedFillsLeavesInOrder: keys that come in order fill their
// leaves, and a leaf emptied by deletes is merged away.
func TestOrderedFillsLeavesInOrder(t *testing.T) {
	o := newOrdered()
	const n = 100000
	items := make([]*item, n)
	for i := range n {
		items[i] = newTestItem(fmt.Sprintf("k%07d", i))
		o.insert(items[i])
	}
	if leaves, min := o.top.Len(), (n+leafCap-1)/leafCap; leaves > min+1 {
		t.Fatalf("%d keys in order take %d leaves, want %d", n, leaves, min)
	}
	// Keys in the order a counter writes them (k0, k1, ... k99999) come
	// in order only within runs.
	o = newOrdered()
	for i := range n {
		o.insert(newTestItem(fmt.Sprintf("k%d", i)))
	}
	if fill := float64(n) / float64(o.top.Len()*leafCap); fill < 0.6 {
		t.Fatalf("counter keys fill leaves to %.2f", fill)
	}
	// Delete nine keys in ten: the leaves merge.
	o = newOrdered()
	for _, it := range items {
		o.insert(it)
	}
	for i, it := range items {
		if i%10 != 0 {
			o.delete(it)
		}
	}
	if fill := float64(o.len()) / float64(o.top.Len()*leafCap); fill < 0.25 {
		t.Fatalf("after deletes leaves are %.2f full (%d keys, %d leaves)", fill, o.len(), o.top.Len())
	}
}

// TestOrderedEdges: a key below all of a full leaf moves to the leaf before
// it, a middle leaf emptied between two full ones goes, deleting a key the
// set does not hold changes nothing, and a walk stops where it is told to.
func TestOrderedEdges(t *testing.T) {
	o := newOrdered()
	items := map[string]*item{}
	var want []string
	add := func(k string) {
		items[k] = newTestItem(k)
		o.insert(items[k])
		i, _ := slices.BinarySearch(want, k)
		want = slices.Insert(want, i, k)
	}
	del := func(k string) {
		o.delete(items[k])
		delete(items, k)
		i, _ := slices.BinarySearch(want, k)
		want = slices.Delete(want, i, i+1)
	}
	for i := range 3 * leafCap {
		add(fmt.Sprintf("k%04d", i))
	}
	if o.top.Len() != 3 {
		t.Fatalf("%d keys in order make %d leaves", 3*leafCap, o.top.Len())
	}
	o.check(t, want)

	// Room in the first leaf, a gap below the second's first key, the
	// second full again: the key in the gap goes to the first leaf.
	for i := range 10 {
		del(fmt.Sprintf("k%04d", i))
	}
	gap := fmt.Sprintf("k%04d", leafCap)
	del(gap)
	add(fmt.Sprintf("k%04d", leafCap) + "a") // fills the second leaf
	add(gap)
	o.check(t, want)
	if l := o.find(gap); l.fence != "" {
		t.Fatalf("%q went to the leaf with fence %q, not the first", gap, l.fence)
	}

	// Empty the middle leaf: its neighbours are too full to take it.
	mid := o.find(fmt.Sprintf("k%04d", leafCap+leafCap/2))
	for mid.n > 0 {
		del(mid.items[0].key())
	}
	o.check(t, want)
	if o.top.Len() != 2 {
		t.Fatalf("an emptied middle leaf stays: %d leaves", o.top.Len())
	}

	o.delete(newTestItem("absent"))
	o.check(t, want)

	first := o.find("")
	from, _ := slices.BinarySearch(want, first.items[first.n-1].key())
	var walked []string
	o.ascend(want[from], func(it *item) bool {
		walked = append(walked, it.key())
		return len(walked) < 3
	})
	if !slices.Equal(walked, want[from:from+3]) {
		t.Fatalf("walk of three gives %v", walked)
	}
}

// FuzzOrdered reads operations from the first 1,024 bytes of its input:
// each byte inserts or deletes one of 512 keys (bit 0), the key chosen by
// the other bits and a running offset, so runs of bytes make runs of keys
// up and down. The set must match a sorted slice throughout.
func FuzzOrdered(f *testing.F) {
	f.Add([]byte{0, 2, 4, 6, 8, 1, 3, 5})
	f.Add(bytes.Repeat([]byte{2}, 600))
	f.Fuzz(func(t *testing.T, ops []byte) {
		ops = ops[:min(len(ops), 1024)]
		o := newOrdered()
		items := map[string]*item{}
		var want []string
		at := 0
		for i, op := range ops {
			at = (at + int(op>>1)) % 512
			key := fmt.Sprintf("k%03d", at)
			j, found := slices.BinarySearch(want, key)
			switch {
			case op&1 == 1 && found:
				o.delete(items[key])
				delete(items, key)
				want = slices.Delete(want, j, j+1)
			case op&1 == 0 && !found:
				items[key] = newTestItem(key)
				o.insert(items[key])
				want = slices.Insert(want, j, key)
			}
			if i%128 == 127 {
				o.check(t, want)
			}
		}
		o.check(t, want)
	})
}
