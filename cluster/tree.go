package cluster

import (
	"github.com/disperse/disperse/engine"
)

// The hash tree anti-entropy compares: engine.Leaves leaf digests (each the
// XOR of the entry hashes of one leaf's replicated entries), grouped
// 1<<fanoutBits to a parent, up to one root. Node i of level l covers the
// leaves [i<<(fanoutBits*(treeLevels-l)), (i+1)<<(fanoutBits*(treeLevels-l))).
const (
	fanoutBits = 4
	fanout     = 1 << fanoutBits
	treeLevels = 4 // engine.Leaves == fanout^treeLevels
)

// startLevel is where a comparison begins: the root's children's children
// (256 hashes, 2 KiB), cheaper than three round trips from the root.
const startLevel = 2

func init() {
	if 1<<(fanoutBits*treeLevels) != engine.Leaves {
		panic("cluster: the hash tree does not cover engine.Leaves")
	}
}

// tree holds every level of the hash tree; levels[treeLevels] are the leaves.
type tree [treeLevels + 1][]uint64

// buildTree computes the levels above the given leaf digests.
func buildTree(leaves []uint64) *tree {
	var t tree
	t[treeLevels] = leaves
	for l := treeLevels - 1; l >= 0; l-- {
		below := t[l+1]
		level := make([]uint64, len(below)/fanout)
		for i := range level {
			var x uint64
			for _, h := range below[i*fanout : (i+1)*fanout] {
				x ^= h
			}
			level[i] = x
		}
		t[l] = level
	}
	return &t
}

// children returns the hashes of the children of the given nodes of level,
// fanout for each node, in order.
func (t *tree) children(level int, nodes []int) []uint64 {
	out := make([]uint64, 0, len(nodes)*fanout)
	for _, i := range nodes {
		out = append(out, t[level+1][i*fanout:(i+1)*fanout]...)
	}
	return out
}

// differing returns the nodes of level (all of it when parents is nil, or
// the children of parents of level-1) whose hashes differ from theirs, given
// in the same order.
func (t *tree) differing(level int, parents []int, theirs []uint64) []int {
	var idx []int
	if parents == nil {
		for i := range t[level] {
			idx = append(idx, i)
		}
	} else {
		for _, p := range parents {
			for c := range fanout {
				idx = append(idx, p*fanout+c)
			}
		}
	}
	var diff []int
	for k, i := range idx {
		if k < len(theirs) && t[level][i] != theirs[k] {
			diff = append(diff, i)
		}
	}
	return diff
}
