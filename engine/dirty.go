package engine

import "encoding/binary"

// dirtyKeys is a shard's list of keys changed since the last snapshot
// swap: each key's bytes after their length (a uvarint), in one buffer.
// The item's dirty bit (metaDirty) keeps a key from being added twice
// while it stays in the index, so the list costs a few bytes a key and no
// allocation of its own; a key removed and written again may appear twice,
// and the snapshot drops the repeats. The keys are copies: the list never
// keeps an item's buffer, and with it an old value, alive.
//
// The bit's life: markDirty sets it and adds the key; the snapshot swaps
// the list out, and clears the bit as it reads the item's state, under
// the shard's lock. A change between the swap and that read finds the bit
// set and adds nothing: the snapshot reads the changed state. A change
// after the read adds the key to the new list. A failed snapshot adds
// every key of its list again.
type dirtyKeys struct {
	buf []byte
	mem int64 // dirtyCost of the keys added
}

// add appends key and returns what it is charged.
func (d *dirtyKeys) add(key string) int64 {
	d.buf = binary.AppendUvarint(d.buf, uint64(len(key)))
	d.buf = append(d.buf, key...)
	c := dirtyCost(len(key))
	d.mem += c
	return c
}

// appendKeys appends the list's keys to out, as strings that alias the
// list's buffer: the list must not be added to afterwards.
func (d *dirtyKeys) appendKeys(out []string) []string {
	for b := d.buf; len(b) > 0; {
		n, w := binary.Uvarint(b)
		b = b[w:]
		out = append(out, unsafeString(b[:n]))
		b = b[n:]
	}
	return out
}
