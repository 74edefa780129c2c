package engine

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// item is the index's record of one key. It is kept small (16 bytes on
// 64-bit machines) because there is one per key: the key and the
// replicated slot's length, expiry, version and value share one allocation
// (the item's record, see setRecord), the content type is an interned id,
// and the rare parts (a node-local override, a content type the interner
// has no room for) live in side maps of the shard.
//
// A record never changes once p points at it: a write points p at a new
// one, so a reader holding the shard's read lock, or a value returned to a
// caller, sees one whole record. p is also read without that lock by the
// ordered index (which only needs the key, and the key bytes never change),
// hence atomic. hidx is guarded by the deadline heap's mutex. meta packs
// the flags (bits 0-7), the interned content type (bits 8-23) and the
// eviction bits (24-31): the flags and the content type change only under
// the shard's write lock, while a reader under the read lock may set the
// visited bit, so every access is atomic; the eviction policy and the
// volatile-ttl scan read flags without the shard's lock and check again
// under it.
type item struct {
	p    atomic.Pointer[byte] // the record
	hidx int32                // position in the deadline heap, -1 if none
	meta atomic.Uint32
}

// item flags.
const (
	itemRepl    = 1 << iota // the replicated slot holds an entry
	itemDeleted             // the replicated entry is a tombstone
	itemLocal               // a node-local slot is in shard.locals
	itemCtypeX              // the replicated content type is in shard.ctypes
	itemMarker              // the replicated entry is an expiry marker: its value passed ExpiresAt and was freed
	itemEvicted             // the replicated entry is an eviction stub: its value was evicted, its key, version and expiry stay
	itemQueued              // the item is in its shard's eviction queue (shard.evq)
	itemStubbed             // the item is in its shard's stub queue (shard.stubs)
)

// metaVisited is the eviction policy's reference bit: set by a read,
// cleared by the eviction hand as it passes.
const metaVisited = 1 << 24

// metaDirty says the item's key is in its shard's dirty list, or in the
// list of the snapshot being written and not yet read by it: a change
// need not add it again. Set by markDirty under the shard's write lock,
// cleared by the snapshot as it reads the item (see dirtyKeys).
const metaDirty = 1 << 25

// flags are the item flags.
func (it *item) flags() uint8 { return uint8(it.meta.Load()) }

// setFlags replaces the flags. Called with the shard's write lock held.
func (it *item) setFlags(f uint8) { it.meta.Store(it.meta.Load()&^0xff | uint32(f)) }

// ctype is the replicated slot's interned content type.
func (it *item) ctype() uint16 { return uint16(it.meta.Load() >> 8) }

// setCtype replaces the content type id. Called with the shard's write
// lock held.
func (it *item) setCtype(id uint16) { it.meta.Store(it.meta.Load()&^0xffff00 | uint32(id)<<8) }

// touch sets the visited bit (a read under the shard's read lock).
func (it *item) touch() {
	if it.meta.Load()&metaVisited == 0 {
		it.meta.Or(metaVisited)
	}
}

// A record is, in one allocation: the key's length (uvarint), the key,
// the replicated value's length (uvarint), its ExpiresAt (uvarint of the
// int64's bits), its Version's Time and Node (8 bytes each, little
// endian), then the value. Against fixed fields in the item, the lengths
// and an expiry of 0 take a byte each where they took 4 and 8, and a key
// costs one Go object less: 1,000,000 keys of 7 bytes with 100-byte values
// take 16+128 bytes each instead of 48+112.
const recordFixed = 16 // the version's two words

// recordSize is the length of the record of a key of klen bytes and a value
// of vlen with expiry exp.
func recordSize(klen, vlen int, exp int64) int {
	return uvarintLen(uint64(klen)) + klen + uvarintLen(uint64(vlen)) + uvarintLen(uint64(exp)) + recordFixed + vlen
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// setRecord points the item at a fresh record of key, the replicated value,
// its version and its expiry.
func (it *item) setRecord(key string, value []byte, v Version, exp int64) {
	buf := make([]byte, 0, recordSize(len(key), len(value), exp))
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	buf = append(buf, key...)
	buf = binary.AppendUvarint(buf, uint64(len(value)))
	buf = binary.AppendUvarint(buf, uint64(exp))
	buf = binary.LittleEndian.AppendUint64(buf, v.Time)
	buf = binary.LittleEndian.AppendUint64(buf, v.Node)
	buf = append(buf, value...)
	it.p.Store(unsafe.SliceData(buf))
}

// uvarintAt decodes the uvarint at p and returns it and its length. It
// reads byte by byte: the record's length is not known until its varints
// are read.
func uvarintAt(p unsafe.Pointer) (uint64, uintptr) {
	var x uint64
	for i, s := uintptr(0), uint(0); ; i, s = i+1, s+7 {
		b := *(*byte)(unsafe.Add(p, i))
		if b < 0x80 {
			return x | uint64(b)<<s, i + 1
		}
		x |= uint64(b&0x7f) << s
	}
}

// key is the item's key; it aliases the item's record.
func (it *item) key() string {
	p := unsafe.Pointer(it.p.Load())
	n, w := uvarintAt(p)
	return unsafe.String((*byte)(unsafe.Add(p, w)), n)
}

// header is an item's record decoded, the value left in place.
type header struct {
	klen, vlen int
	exp        int64
	ver        Version
	rec        unsafe.Pointer // the record
	val        uintptr        // the value's offset in it
}

func (it *item) header() header {
	p := unsafe.Pointer(it.p.Load())
	klen, w := uvarintAt(p)
	off := w + uintptr(klen)
	vlen, w := uvarintAt(unsafe.Add(p, off))
	off += w
	exp, w := uvarintAt(unsafe.Add(p, off))
	off += w
	fixed := unsafe.Slice((*byte)(unsafe.Add(p, off)), recordFixed)
	return header{
		klen: int(klen),
		vlen: int(vlen),
		exp:  int64(exp),
		ver:  Version{Time: binary.LittleEndian.Uint64(fixed), Node: binary.LittleEndian.Uint64(fixed[8:])},
		rec:  p,
		val:  off + recordFixed,
	}
}

// size is the length of the record.
func (h *header) size() int { return int(h.val) + h.vlen }

// key aliases the record's key.
func (h *header) key() string {
	return unsafe.String((*byte)(unsafe.Add(h.rec, uvarintLen(uint64(h.klen)))), h.klen)
}

// value aliases the record's value, with no spare capacity, so an append
// by a caller copies; nil when there is none.
func (h *header) value() []byte {
	if h.vlen == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(h.rec, h.val)), h.vlen)
}

// ver is the replicated slot's version.
func (it *item) ver() Version { return it.header().ver }

// exp is the replicated slot's ExpiresAt.
func (it *item) exp() int64 { return it.header().exp }

// vlen is the length of the replicated value (0 without one).
func (it *item) vlen() int { return it.header().vlen }

// value is the replicated value (see header.value).
func (it *item) value() []byte {
	h := it.header()
	return h.value()
}

// slot is a node-local override (an X-Is-Sync write). By invariant it is
// newer than the item's replicated slot, so it is what readers see.
type slot struct {
	value   []byte
	ctype   string
	exp     int64
	ver     Version
	deleted bool
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// interner maps content types to small ids so that an item holds two bytes
// instead of a string header. Id 0 is the empty type. Readers use names
// without a lock: the slice only grows and published elements never change.
type interner struct {
	mu    sync.Mutex
	ids   map[string]uint16
	names atomic.Pointer[[]string]
	last  atomic.Pointer[interned] // the last type looked up: most writes repeat it
}

type interned struct {
	name string
	id   uint16
}

// maxInterned is how many distinct content types get an id; later ones are
// stored beside the item.
const maxInterned = 1<<16 - 1

func newInterner() *interner {
	in := &interner{ids: map[string]uint16{"": 0}}
	names := []string{""}
	in.names.Store(&names)
	return in
}

// id returns the id of ct, adding it if there is room.
func (in *interner) id(ct string) (uint16, bool) {
	if ct == "" {
		return 0, true
	}
	if l := in.last.Load(); l != nil && l.name == ct {
		return l.id, true
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if id, ok := in.ids[ct]; ok {
		in.last.Store(&interned{in.name(id), id})
		return id, true
	}
	names := *in.names.Load()
	if len(names) >= maxInterned {
		return 0, false
	}
	ct = string([]byte(ct))
	id := uint16(len(names))
	in.ids[ct] = id
	names = append(names, ct)
	in.names.Store(&names)
	return id, true
}

// canonical returns an owned copy of ct, shared when it is interned.
func (in *interner) canonical(ct string) string {
	if id, ok := in.id(ct); ok {
		return in.name(id)
	}
	return string([]byte(ct))
}

func (in *interner) name(id uint16) string { return (*in.names.Load())[id] }

// FNV-1a, 64 bit: deterministic across processes and machines, which the
// bucket of a key must be.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashKey(key string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= fnvPrime
	}
	return h
}

// BucketOf is the anti-entropy bucket of key, in [0, Buckets). It is the
// same on every node.
func BucketOf(key string) int { return int(hashKey(key) % Buckets) }

// LeafOf is the anti-entropy leaf of key, in [0, Leaves). It is the same on
// every node. Buckets divides Leaves, so LeafOf(key) % Buckets ==
// BucketOf(key): a leaf lies in exactly one bucket.
func LeafOf(key string) int { return int(hashKey(key) % Leaves) }

// A leaf must lie in one bucket: this fails to compile unless Buckets
// divides Leaves.
var _ [0]struct{} = [Leaves % Buckets]struct{}{}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// entryHash is the digest contribution of a replicated entry.
func entryHash(keyHash uint64, v Version, exp int64, deleted bool) uint64 {
	h := mix(keyHash ^ v.Time)
	h = mix(h ^ v.Node)
	h = mix(h ^ uint64(exp))
	if deleted {
		h = mix(h ^ 1)
	}
	return h
}
