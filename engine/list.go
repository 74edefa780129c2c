package engine

import "strings"

// internalPrefix starts the keys the node keeps for itself (blob
// manifests). List shows them only when asked for with a prefix that starts
// with it.
const internalPrefix = "\x00"

// listChunk is how many keys List takes from the ordered index per pass.
const listChunk = 256

// list implements Engine.List. It reads the ordered index in chunks under
// its lock and checks each key's visibility under its shard's lock, never
// holding both.
func (ix *index) list(prefix, after string, limit int, now int64) ([]string, string) {
	if limit <= 0 {
		return nil, ""
	}
	start, inclusive := prefix, true
	if after >= start {
		start, inclusive = after, false
	}
	if !strings.HasPrefix(prefix, internalPrefix) && start < "\x01" {
		start, inclusive = "\x01", true // skip every internal key at once
	}
	var keys []string
	for len(keys) <= limit {
		chunk, more := ix.treeChunk(prefix, start, inclusive)
		for _, k := range chunk {
			if ix.isVisible(k, now) {
				keys = append(keys, k)
				if len(keys) > limit {
					break
				}
			}
		}
		if !more {
			break
		}
		start, inclusive = chunk[len(chunk)-1], false
	}
	if len(keys) > limit {
		return keys[:limit], keys[limit-1]
	}
	return keys, ""
}

// treeChunk returns up to listChunk keys with prefix from start on, and
// whether there may be more.
func (ix *index) treeChunk(prefix, start string, inclusive bool) ([]string, bool) {
	out := make([]string, 0, listChunk)
	more := false
	ix.treeMu.RLock()
	defer ix.treeMu.RUnlock()
	ix.tree.ascend(start, func(it *item) bool {
		k := it.key()
		if !inclusive && k == start {
			return true
		}
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		if len(out) == listChunk {
			more = true
			return false
		}
		out = append(out, k)
		return true
	})
	return out, more
}

func (ix *index) isVisible(key string, now int64) bool {
	h := hashKey(key)
	s := ix.shard(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := s.t.get(key, h)
	if it == nil {
		return false
	}
	_, ok := ix.visible(s, it, now)
	return ok
}
