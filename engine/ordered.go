package engine

import (
	"strings"
	"unsafe"

	"github.com/google/btree"
)

// leafCap is how many items a leaf of the ordered index holds: with its
// fence and count a leaf is 1,016 bytes, and the allocation header Go puts
// before every object of more than 512 bytes that holds pointers makes it
// 1,024, a size class of its own. (At 125 items it took the 1,152-byte
// class: 128 bytes lost a leaf.)
const leafCap = 124

// The leaf and its allocation header fill the 1,024-byte size class.
var _ [0]struct{} = [unsafe.Sizeof(leaf{}) + mallocHeader - 1024]struct{}{}

// mallocHeader is the allocation header of an object of more than 512
// bytes with pointers.
const mallocHeader = 8

// ordered is the index's ordered set of items, by key, for List: sorted
// leaves of up to leafCap item pointers, found through a B-tree of their
// fences. A leaf's fence is at most its smallest key and above every key
// of the leaves before it; the first leaf's fence is "".
//
// A B-tree of items splits a full node in two and never adds to the left
// half again when keys come in order, so its nodes stay half full: 16 or
// more bytes a key for keys written in order. A full leaf here that gets
// a key above all of its own starts a new leaf with that key instead of
// splitting, so keys that come in order (a snapshot's, or a writer's)
// fill leaves to the brim: 8 bytes a key. A key inside a full leaf splits
// it in two; a leaf that falls under a quarter full merges with a
// neighbour when the two fit in three quarters of a leaf.
//
// Not safe for concurrent use: the index guards it with treeMu.
type ordered struct {
	top *btree.BTreeG[fenceRef]
	n   int
}

type leaf struct {
	fence string
	n     int
	items [leafCap]*item
}

// fenceRef is a leaf in the B-tree of fences.
type fenceRef struct {
	fence string
	l     *leaf
}

func newOrdered() *ordered {
	o := &ordered{top: btree.NewG(16, func(a, b fenceRef) bool { return a.fence < b.fence })}
	o.top.ReplaceOrInsert(fenceRef{l: &leaf{}})
	return o
}

// len is how many items the set holds.
func (o *ordered) len() int { return o.n }

// find is the leaf where key belongs: the last one whose fence is at most
// key.
func (o *ordered) find(key string) *leaf {
	var l *leaf
	o.top.DescendLessOrEqual(fenceRef{fence: key}, func(r fenceRef) bool {
		l = r.l
		return false
	})
	return l
}

// next and prev are the leaves after and before l, or nil.
func (o *ordered) next(l *leaf) *leaf { return o.beside(l, o.top.AscendGreaterOrEqual) }
func (o *ordered) prev(l *leaf) *leaf { return o.beside(l, o.top.DescendLessOrEqual) }

// beside walks the fences from l's, one way, to the first other leaf.
func (o *ordered) beside(l *leaf, walk func(fenceRef, btree.ItemIteratorG[fenceRef])) *leaf {
	var n *leaf
	walk(fenceRef{fence: l.fence}, func(r fenceRef) bool {
		if r.l == l {
			return true
		}
		n = r.l
		return false
	})
	return n
}

// search is the position of the first item of l whose key is at least
// key.
func (l *leaf) search(key string) int {
	lo, hi := 0, l.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.items[m].key() < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// insert adds it, whose key the set does not hold. A full leaf first
// passes items to a neighbour with room (the items below the new key to
// the leaf before it, those above to the leaf after it); only when both
// are full does it split, or, for a key above all of its own, start a new
// leaf.
func (o *ordered) insert(it *item) {
	key := it.key()
	l := o.find(key)
	i := l.search(key)
	o.n++
	if l.n < leafCap {
		l.insertAt(i, it)
		return
	}
	p, r := o.prev(l), o.next(l)
	switch {
	case p != nil && p.n < leafCap:
		// The first s items go to p; the new key too if it comes first.
		s := min(leafCap-p.n, i)
		copy(p.items[p.n:], l.items[:s])
		p.n += s
		copy(l.items[:], l.items[s:])
		clear(l.items[leafCap-s:])
		l.n -= s
		if s == 0 {
			p.items[p.n] = it
			p.n++
		} else {
			l.insertAt(i-s, it)
		}
		o.refence(l, l.items[0].key())
	case r != nil && r.n < leafCap:
		// The last s items go to r; the new key too if it comes last.
		s := min(leafCap-r.n, leafCap-i)
		copy(r.items[s:r.n+s], r.items[:r.n])
		copy(r.items[:s], l.items[leafCap-s:])
		r.n += s
		clear(l.items[leafCap-s:])
		l.n -= s
		if s == 0 {
			r.insertAt(0, it)
		} else {
			l.insertAt(i, it)
		}
		o.refence(r, r.items[0].key())
	case i == leafCap: // above all of a full leaf: keys in order
		n := &leaf{fence: strings.Clone(key), n: 1}
		n.items[0] = it
		o.top.ReplaceOrInsert(fenceRef{n.fence, n})
	default:
		const half = leafCap / 2
		n := &leaf{fence: strings.Clone(l.items[half].key()), n: leafCap - half}
		copy(n.items[:], l.items[half:])
		clear(l.items[half:])
		l.n = half
		o.top.ReplaceOrInsert(fenceRef{n.fence, n})
		if i <= half {
			l.insertAt(i, it)
		} else {
			n.insertAt(i-half, it)
		}
	}
}

// refence gives l, not the first leaf, the fence key (its new smallest key).
func (o *ordered) refence(l *leaf, key string) {
	o.top.Delete(fenceRef{fence: l.fence})
	l.fence = strings.Clone(key)
	o.top.ReplaceOrInsert(fenceRef{l.fence, l})
}

func (l *leaf) insertAt(i int, it *item) {
	copy(l.items[i+1:l.n+1], l.items[i:l.n])
	l.items[i] = it
	l.n++
}

// delete removes the item with the key of it, if the set holds one.
func (o *ordered) delete(it *item) {
	key := it.key()
	l := o.find(key)
	i := l.search(key)
	if i == l.n || l.items[i].key() != key {
		return
	}
	copy(l.items[i:l.n-1], l.items[i+1:l.n])
	l.n--
	l.items[l.n] = nil
	o.n--
	if l.n >= leafCap/4 {
		return
	}
	// Merge with the smaller neighbour if the two fit in three quarters
	// of a leaf; the first leaf, whose fence is "", always stays.
	p, r := o.prev(l), o.next(l)
	switch {
	case p != nil && (r == nil || p.n <= r.n) && p.n+l.n <= 3*leafCap/4:
		o.merge(p, l)
	case r != nil && l.n+r.n <= 3*leafCap/4:
		o.merge(l, r)
	case l.n == 0 && p != nil:
		o.top.Delete(fenceRef{fence: l.fence})
	}
}

// merge moves the items of r into l, the leaf before it, and drops r.
func (o *ordered) merge(l, r *leaf) {
	copy(l.items[l.n:], r.items[:r.n])
	l.n += r.n
	o.top.Delete(fenceRef{fence: r.fence})
}

// ascend calls fn with each item whose key is at least key, in order,
// until fn returns false.
func (o *ordered) ascend(key string, fn func(*item) bool) {
	l := o.find(key)
	for i := l.search(key); i < l.n; i++ {
		if !fn(l.items[i]) {
			return
		}
	}
	first := true
	o.top.AscendGreaterOrEqual(fenceRef{fence: l.fence}, func(r fenceRef) bool {
		if first && r.l == l {
			first = false
			return true
		}
		for _, it := range r.l.items[:r.l.n] {
			if !fn(it) {
				return false
			}
		}
		return true
	})
}
