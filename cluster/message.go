package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/disperse/disperse/engine"
)

// msgBatch is the first byte of a replication batch, the one kind of user
// message nodes send over memberlist (see doc.go for the layout).
const msgBatch byte = 1

// Limits on what a peer's message may claim, checked before anything is
// allocated from it.
const (
	maxNameBytes   = 512
	maxSyncIndices = engine.Leaves
)

// entryOverhead bounds the bytes an entry adds to a batch beyond its key,
// value and content type.
const entryOverhead = 1 + 6*binary.MaxVarintLen64

func entrySize(e *engine.Entry) int {
	return entryOverhead + len(e.Key) + len(e.Value) + len(e.ContentType)
}

// header is what every batch says about its sender: its name and its wall
// clock when it sent the batch (Unix milliseconds), so a receiver can name
// a peer whose clock is off.
type header struct {
	from   string
	wallMS int64
}

func appendHeader(b []byte, h header) []byte {
	b = binary.AppendUvarint(b, uint64(len(h.from)))
	b = append(b, h.from...)
	return binary.AppendVarint(b, h.wallMS)
}

func (r *reader) header() header {
	name := r.bytes("sender name")
	if len(name) > maxNameBytes {
		r.fail("sender name")
	}
	return header{from: string(name), wallMS: r.varint("sender clock")}
}

// encodeBatch is a replication batch: the type byte, the header and the
// entries in the engine's encoding (engine.AppendEntries).
func encodeBatch(h header, ents []engine.Entry) []byte {
	n := 2 + binary.MaxVarintLen64*2 + len(h.from)
	for i := range ents {
		n += entrySize(&ents[i])
	}
	b := make([]byte, 0, n)
	b = append(b, msgBatch)
	b = appendHeader(b, h)
	return engine.AppendEntries(b, ents)
}

// decodeBatch reads a batch after its type byte. The entries own their
// memory.
func decodeBatch(b []byte) (header, []engine.Entry, error) {
	r := &reader{b: b}
	h := r.header()
	if r.err != nil {
		return header{}, nil, r.err
	}
	ents, err := engine.DecodeEntries(r.b)
	if err != nil {
		return header{}, nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	return h, ents, nil
}

// reader decodes the fields of a message; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: short or malformed %s", ErrMessage, what)
	}
	r.b = nil
}

func (r *reader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint64(what string) uint64 {
	if len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads a count of items of at least minBytes each, bounded by max
// and by the bytes left, so a hostile count cannot decide an allocation.
func (r *reader) count(what string, max, minBytes int) int {
	n := r.uvarint(what)
	if r.err == nil && (n > uint64(max) || n*uint64(minBytes) > uint64(len(r.b))) {
		r.fail(what)
		return 0
	}
	return int(n)
}

// end reports trailing bytes as an error.
func (r *reader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes after %s", ErrMessage, len(r.b), what)
	}
	return r.err
}

// keyHash is the 64-bit FNV-1a hash of a key: how the sync protocol names
// a key without sending it.
func keyHash(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

// Sync protocol bodies (HTTP, see sync.go and doc.go).

// encodeIndices is a tree or leaf request: the level and node indices.
func encodeIndices(from string, level int, idx []int) []byte {
	b := appendHeader(nil, header{from: from})
	b = binary.AppendUvarint(b, uint64(level))
	b = binary.AppendUvarint(b, uint64(len(idx)))
	for _, i := range idx {
		b = binary.AppendUvarint(b, uint64(i))
	}
	return b
}

func decodeIndices(b []byte) (from string, level int, idx []int, err error) {
	r := &reader{b: b}
	h := r.header()
	lv := r.uvarint("level")
	if r.err == nil && lv > treeLevels {
		r.fail("level")
	}
	n := r.count("index count", maxSyncIndices, 1)
	width := uint64(1) << (fanoutBits * lv)
	for i := 0; i < n && r.err == nil; i++ {
		v := r.uvarint("index")
		if v >= width {
			r.fail("index")
		}
		idx = append(idx, int(v))
	}
	if err := r.end("indices"); err != nil {
		return "", 0, nil, err
	}
	return h.from, int(lv), idx, nil
}

// slotRef is one key of a leaf as the sync protocol lists it.
type slotRef struct {
	hash    uint64
	version engine.Version
}

// encodeLeaves lists, for each leaf in order, its keys' hashes and versions.
func encodeLeaves(leaves [][]slotRef) []byte {
	n := 0
	for _, l := range leaves {
		n += binary.MaxVarintLen64 + 24*len(l)
	}
	b := make([]byte, 0, n)
	for _, l := range leaves {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			b = binary.BigEndian.AppendUint64(b, s.hash)
			b = binary.BigEndian.AppendUint64(b, s.version.Time)
			b = binary.BigEndian.AppendUint64(b, s.version.Node)
		}
	}
	return b
}

func decodeLeaves(b []byte, count int) ([][]slotRef, error) {
	r := &reader{b: b}
	out := make([][]slotRef, 0, count)
	for range count {
		n := r.count("slot count", len(b)/24, 24)
		l := make([]slotRef, 0, n)
		for range n {
			l = append(l, slotRef{r.uint64("key hash"), engine.Version{Time: r.uint64("version time"), Node: r.uint64("version node")}})
		}
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, l)
	}
	if err := r.end("leaves"); err != nil {
		return nil, err
	}
	return out, nil
}

// encodeWant asks for the entries of keys by leaf and key hash.
func encodeWant(from string, want map[int][]uint64) []byte {
	b := appendHeader(nil, header{from: from})
	b = binary.AppendUvarint(b, uint64(len(want)))
	for leaf, hs := range want {
		b = binary.AppendUvarint(b, uint64(leaf))
		b = binary.AppendUvarint(b, uint64(len(hs)))
		for _, h := range hs {
			b = binary.BigEndian.AppendUint64(b, h)
		}
	}
	return b
}

func decodeWant(b []byte) (string, map[int][]uint64, error) {
	r := &reader{b: b}
	h := r.header()
	n := r.count("leaf count", engine.Leaves, 2)
	want := make(map[int][]uint64, n)
	for i := 0; i < n && r.err == nil; i++ {
		leaf := r.uvarint("leaf")
		if leaf >= engine.Leaves {
			r.fail("leaf")
			break
		}
		k := r.count("hash count", len(b)/8, 8)
		hs := make([]uint64, 0, k)
		for range k {
			hs = append(hs, r.uint64("key hash"))
		}
		want[int(leaf)] = hs
	}
	if err := r.end("wanted keys"); err != nil {
		return "", nil, err
	}
	return h.from, want, nil
}
