package resp

import (
	"math/rand/v2"
	"strings"
)

// maxRandomSteps bounds the listings one RANDOMKEY makes.
const maxRandomSteps = 2048

// randomKey picks a key at random without an index for it: it walks down
// the key space byte by byte, at each level choosing uniformly among the
// bytes that follow the prefix so far in some key (or stopping at the key
// that is the prefix itself). Keys in sparse branches are likelier than
// keys in dense ones, as with Redis's bucket sampling.
func randomKey(st Store, maxKey int) (string, bool) {
	steps := 0
	list := func(prefix, after string) (string, bool) {
		steps++
		ks, _ := st.List(prefix, after, 1)
		if len(ks) == 0 {
			return "", false
		}
		return ks[0], true
	}
	first, ok := list("", "")
	if !ok {
		return "", false
	}
	prefix := ""
	for steps < maxRandomSteps {
		// The branches below prefix: the key equal to it, if any, and one per
		// distinct next byte.
		var branches []string
		after := prefix // List leaves out the key equal to after
		if k, ok := list(prefix, ""); ok && k == prefix {
			branches = append(branches, k)
		}
		for steps < maxRandomSteps {
			k, ok := list(prefix, after)
			if !ok {
				break
			}
			next := k[:len(prefix)+1]
			branches = append(branches, next)
			if next[len(next)-1] == 0xff {
				break
			}
			// Past every key that starts with next.
			after = next + strings.Repeat("\xff", maxKey)
		}
		if len(branches) == 0 {
			return first, true
		}
		pick := branches[rand.IntN(len(branches))]
		if pick == prefix {
			return prefix, true
		}
		prefix = pick
	}
	// Too many branches to walk: the first key at or after the prefix.
	if k, ok := list(prefix, ""); ok {
		return k, true
	}
	return first, true
}
