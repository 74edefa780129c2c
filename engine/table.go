package engine

import "math/bits"

// table is one shard's hash table from key to item: open addressing with
// linear probing and a one-byte tag per slot, so a probe touches an item
// only when its tag matches. It costs about 12 bytes per key (a Go map of
// string to pointer costs 30 to 50), and any size is allowed, so it grows by
// half rather than doubling. Guarded by the shard's mutex.
type table struct {
	slots []*item
	tags  []uint8 // 0: empty slot
	n     int
}

const minTableSize = 8

// leavesPerShard is how many anti-entropy leaves one shard holds: a key of
// hash h lies in shard h % Buckets and leaf h % Leaves, so its leaf within
// the shard is h / Buckets % leavesPerShard.
const leavesPerShard = Leaves / Buckets

// The tag keeps the leaf within the shard in bits 1-6.
var _ [0]struct{} = [leavesPerShard - 64]struct{}{}

// tag is the slot tag of hash h, never 0: the high bit marks a used slot,
// bits 1-6 are the key's leaf within its shard (so a walk of one leaf
// reads the tags and touches only that leaf's items) and bit 0 comes from
// the mixed hash. All seven low bits discriminate keys while probing.
func tag(h uint64) uint8 {
	return 0x80 | uint8(h/Buckets%leavesPerShard)<<1 | uint8(mix(h)&1)
}

// tagLeaf is the leaf within the shard that a used slot's tag records.
func tagLeaf(tg uint8) int { return int(tg>>1) & (leavesPerShard - 1) }

// home is the slot where a key of hash h starts probing. The key hash is
// mixed again: its low bits chose the shard, and FNV's high bits are weak
// for keys that differ only at the end.
func (t *table) home(h uint64) int {
	hi, _ := bits.Mul64(mix(h), uint64(len(t.slots)))
	return int(hi)
}

func (t *table) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

func (t *table) get(key string, h uint64) *item {
	if t.n == 0 {
		return nil
	}
	tg := tag(h)
	for i := t.home(h); t.tags[i] != 0; i = t.next(i) {
		if t.tags[i] == tg && t.slots[i].key() == key {
			return t.slots[i]
		}
	}
	return nil
}

// put adds it, whose key (of hash h) is not in the table.
func (t *table) put(it *item, h uint64) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(minTableSize, len(t.slots)+len(t.slots)/2))
	}
	i := t.home(h)
	for t.tags[i] != 0 {
		i = t.next(i)
	}
	t.slots[i], t.tags[i] = it, tag(h)
	t.n++
}

// reserve makes room for n keys without growing.
func (t *table) reserve(n int) {
	if size := n*4/3 + 1; size > len(t.slots) {
		t.resize(max(minTableSize, size))
	}
}

func (t *table) resize(size int) {
	old := t.slots
	t.slots, t.tags, t.n = make([]*item, size), make([]uint8, size), 0
	for _, it := range old {
		if it != nil {
			t.put(it, hashKey(it.key()))
		}
	}
}

// del removes key (of hash h) if present, shifting later entries of its
// probe run back so that no tombstone slots are needed.
func (t *table) del(key string, h uint64) {
	if t.n == 0 {
		return
	}
	tg := tag(h)
	i := t.home(h)
	for ; ; i = t.next(i) {
		if t.tags[i] == 0 {
			return
		}
		if t.tags[i] == tg && t.slots[i].key() == key {
			break
		}
	}
	for j := t.next(i); t.tags[j] != 0; j = t.next(j) {
		k := t.home(hashKey(t.slots[j].key()))
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue // j's home is within (i, j]: it stays
		}
		t.slots[i], t.tags[i] = t.slots[j], t.tags[j]
		i = j
	}
	t.slots[i], t.tags[i] = nil, 0
	t.n--
	if t.n == 0 {
		t.slots, t.tags = nil, nil
	}
}

// eachInLeaf calls fn for every item of the shard's leaf sub (see tag),
// without hashing a key.
func (t *table) eachInLeaf(sub int, fn func(*item)) {
	for i, tg := range t.tags {
		if tg != 0 && tagLeaf(tg) == sub {
			fn(t.slots[i])
		}
	}
}

// each calls fn for every item.
func (t *table) each(fn func(*item)) {
	for _, it := range t.slots {
		if it != nil {
			fn(it)
		}
	}
}
