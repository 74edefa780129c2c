package engine

// replHash is the digest term of the item's replicated slot. It covers the
// key, version, expiry and deleted flag, not the value, so an expired value
// hashes the same before and after its bytes are freed.
func replHash(h uint64, it *item) uint64 {
	hd := it.header()
	return entryHash(h, hd.ver, hd.exp, it.flags()&itemDeleted != 0)
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

func (ix *index) bucketEntries(b int, now int64) []Entry {
	s := &ix.shards[b]
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, s.t.n)
	s.t.each(func(it *item) {
		if it.flags()&itemRepl != 0 {
			out = append(out, ix.exportEntry(s, it, now))
		}
	})
	return out
}

// leafEntries returns the leaf's replicated entries: it reads the tags of
// the leaf's shard and touches only the leaf's items.
func (ix *index) leafEntries(leaf int, now int64) []Entry {
	s := &ix.shards[leaf%Buckets]
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Entry
	s.t.eachInLeaf(leaf/Buckets, func(it *item) {
		if it.flags()&itemRepl != 0 {
			out = append(out, ix.exportEntry(s, it, now))
		}
	})
	return out
}

// exportEntry is the replicated slot as anti-entropy sends it: a value past
// its expiry at now goes as an expiry marker (no value, no content type),
// whether or not the reaper has freed it yet.
func (ix *index) exportEntry(s *shard, it *item, now int64) Entry {
	e := ix.replEntry(s, it)
	if !e.Deleted && e.ExpiresAt != 0 && e.ExpiresAt <= now {
		e.Value, e.ContentType, e.Evicted = nil, "", false
	}
	return e
}
