package cluster

import (
	"encoding/binary"
	"fmt"

	"github.com/disperse/disperse/engine"
)

// Message types: the first byte of every user message a node sends over
// memberlist (see doc.go for the layouts).
const (
	msgBatch   byte = 1 // entries written on the sender, fan-out
	msgRepair  byte = 2 // entries of differing buckets, anti-entropy
	msgRequest byte = 3 // "send me your entries of these buckets"
)

// stateVersion is the first byte of the push/pull state (LocalState).
const stateVersion byte = 1

const flagDeleted byte = 1

// entryOverhead bounds the bytes an entry adds beyond its key, value and
// content type.
const entryOverhead = 1 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + 16

func entrySize(e *engine.Entry) int {
	return entryOverhead + len(e.Key) + len(e.Value) + len(e.ContentType)
}

// appendEntry appends the wire form of e to b.
func appendEntry(b []byte, e *engine.Entry) []byte {
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = binary.AppendUvarint(b, uint64(len(e.Value)))
	b = append(b, e.Value...)
	b = binary.AppendUvarint(b, uint64(len(e.ContentType)))
	b = append(b, e.ContentType...)
	b = binary.AppendVarint(b, e.ExpiresAt)
	b = binary.BigEndian.AppendUint64(b, e.Version.Time)
	b = binary.BigEndian.AppendUint64(b, e.Version.Node)
	return b
}

// encodeBatch encodes entries as one message of type typ.
func encodeBatch(typ byte, ents []engine.Entry) []byte {
	n := 1 + binary.MaxVarintLen64
	for i := range ents {
		n += entrySize(&ents[i])
	}
	b := make([]byte, 0, n)
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for i := range ents {
		b = appendEntry(b, &ents[i])
	}
	return b
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

func (r *reader) byte1(what string) byte {
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
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

// decodeBatch decodes the body of a batch (after the type byte). The
// entries copy what they keep: b may be reused by the caller.
func decodeBatch(b []byte) ([]engine.Entry, error) {
	r := &reader{b: b}
	n := r.uvarint("entry count")
	if r.err != nil {
		return nil, r.err
	}
	if n > uint64(len(b)) { // every entry takes at least one byte
		return nil, fmt.Errorf("%w: entry count %d exceeds message size %d", ErrMessage, n, len(b))
	}
	ents := make([]engine.Entry, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		var e engine.Entry
		flags := r.byte1("flags")
		e.Deleted = flags&flagDeleted != 0
		e.Key = string(r.bytes("key"))
		if v := r.bytes("value"); v != nil {
			e.Value = append([]byte(nil), v...)
		}
		e.ContentType = string(r.bytes("content type"))
		e.ExpiresAt = r.varint("expiry")
		e.Version.Time = r.uint64("version time")
		e.Version.Node = r.uint64("version node")
		ents = append(ents, e)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after batch", ErrMessage, len(r.b))
	}
	return ents, nil
}

// encodeRequest asks a peer for its entries of buckets; from names the
// asking node so the peer knows where to answer.
func encodeRequest(from string, buckets []int) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(2+len(buckets))+len(from))
	b = append(b, msgRequest)
	b = binary.AppendUvarint(b, uint64(len(from)))
	b = append(b, from...)
	b = binary.AppendUvarint(b, uint64(len(buckets)))
	for _, k := range buckets {
		b = binary.AppendUvarint(b, uint64(k))
	}
	return b
}

// decodeRequest decodes the body of a request (after the type byte).
func decodeRequest(b []byte) (from string, buckets []int, err error) {
	r := &reader{b: b}
	from = string(r.bytes("request sender"))
	n := r.uvarint("bucket count")
	if r.err == nil && n > engine.Buckets {
		return "", nil, fmt.Errorf("%w: %d buckets requested", ErrMessage, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.uvarint("bucket")
		if k >= engine.Buckets {
			return "", nil, fmt.Errorf("%w: bucket %d out of range", ErrMessage, k)
		}
		buckets = append(buckets, int(k))
	}
	if r.err != nil {
		return "", nil, r.err
	}
	return from, buckets, nil
}

// encodeState is this node's push/pull state: its name and the digest of
// every bucket.
func encodeState(name string, digests []uint64) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(name)+8*len(digests))
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	for _, d := range digests {
		b = binary.BigEndian.AppendUint64(b, d)
	}
	return b
}

// decodeState reads what encodeState writes.
func decodeState(b []byte) (name string, digests []uint64, err error) {
	r := &reader{b: b}
	if v := r.byte1("state version"); r.err == nil && v != stateVersion {
		return "", nil, fmt.Errorf("%w: state version %d, want %d", ErrMessage, v, stateVersion)
	}
	name = string(r.bytes("state name"))
	if r.err != nil {
		return "", nil, r.err
	}
	if len(r.b) != 8*engine.Buckets {
		return "", nil, fmt.Errorf("%w: state holds %d digest bytes, want %d", ErrMessage, len(r.b), 8*engine.Buckets)
	}
	digests = make([]uint64, engine.Buckets)
	for i := range digests {
		digests[i] = binary.BigEndian.Uint64(r.b[8*i:])
	}
	return name, digests, nil
}
