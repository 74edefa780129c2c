package blob

import (
	"hash/fnv"
	"slices"
	"sort"
)

// weight is the rendezvous (highest random weight) score of node for blob
// id: FNV-1a of both, finished with a 64-bit mixer so close names spread.
func weight(id, node string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(node))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rank orders peers by their rendezvous weight for id, highest first (ties
// by name). Every node computes the same order from the same members.
func rank(id string, peers []Peer) []Peer {
	out := slices.Clone(peers)
	sort.Slice(out, func(i, j int) bool {
		wi, wj := weight(id, out[i].Name), weight(id, out[j].Name)
		if wi != wj {
			return wi > wj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// place picks the holder of each of n shards of blob id: shard i goes to
// the i-th ranked peer, wrapping around when there are fewer peers than
// shards.
func place(id string, peers []Peer, n int) []Peer {
	r := rank(id, peers)
	out := make([]Peer, n)
	for i := range out {
		out[i] = r[i%len(r)]
	}
	return out
}

// tolerates is how many node losses a blob with k data shards and the
// given holders (one name per shard) survives, whichever nodes are lost.
// Every stripe has the same placement, so losing a set of nodes is
// survivable when the shards they hold number at most m; the worst set of t
// nodes holds the t largest counts.
func tolerates(holders []string, k int) int {
	m := len(holders) - k
	count := map[string]int{}
	for _, h := range holders {
		count[h]++
	}
	counts := make([]int, 0, len(count))
	for _, c := range count {
		counts = append(counts, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	t, lost := 0, 0
	for _, c := range counts {
		if lost+c > m {
			break
		}
		lost += c
		t++
	}
	return t
}
