package engine

// replHash is the digest term of the item's replicated slot: it covers the
// key, version, expiry and deleted flag, not the value.
func replHash(h uint64, it *item) uint64 {
	return entryHash(h, it.ver, it.exp, it.flags&itemDeleted != 0)
}

// xorDigest adds or removes (XOR) one digest term of a key of hash h in
// its shard's digest and its leaf's. Called with s.mu held, s being the
// key's shard, which owns the leaf.
func (ix *index) xorDigest(s *shard, h, term uint64) {
	s.digest.Store(s.digest.Load() ^ term)
	l := &ix.leaves[h%Leaves]
	l.Store(l.Load() ^ term)
}

func (ix *index) digests() []uint64 {
	out := make([]uint64, Buckets)
	for i := range ix.shards {
		out[i] = ix.shards[i].digest.Load()
	}
	return out
}

func (ix *index) leafDigests() []uint64 {
	out := make([]uint64, Leaves)
	for i := range ix.leaves {
		out[i] = ix.leaves[i].Load()
	}
	return out
}

func (ix *index) bucketEntries(b int) []Entry {
	s := &ix.shards[b]
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, s.t.n)
	s.t.each(func(it *item) {
		if it.flags&itemRepl != 0 {
			out = append(out, ix.replEntry(s, it))
		}
	})
	return out
}

// leafEntries walks the leaf's shard and keeps the keys of the leaf: a
// shard holds Leaves/Buckets leaves, so this hashes that many times more
// keys than it returns.
func (ix *index) leafEntries(leaf int) []Entry {
	s := &ix.shards[leaf%Buckets]
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Entry
	s.t.each(func(it *item) {
		if it.flags&itemRepl != 0 && hashKey(it.key())%Leaves == uint64(leaf) {
			out = append(out, ix.replEntry(s, it))
		}
	})
	return out
}
