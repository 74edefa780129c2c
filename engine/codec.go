package engine

import (
	"encoding/binary"
	"fmt"
)

// codecVersion is the first byte of every encoded batch.
const codecVersion = 1

// Entry flag bits in the encoding.
const (
	flagDeleted = 1 << iota
	flagLocal
	flagExpiry
	flagContentType
	flagValue
	flagEvicted
	flagAll = flagDeleted | flagLocal | flagExpiry | flagContentType | flagValue | flagEvicted
)

// minEntryBytes is the smallest encoded entry (flags, key length, two
// version varints), used to bound the count before allocating.
const minEntryBytes = 4

// AppendEntries appends the binary encoding of ents to dst and returns the
// extended slice. The layout is described in doc.go; DecodeEntries reads it.
func AppendEntries(dst []byte, ents []Entry) []byte {
	return appendEntries(dst, ents, true)
}

// appendEntries encodes ents; without withKey the keys are left out (a
// snapshot value, whose key is the bbolt key).
func appendEntries(dst []byte, ents []Entry, withKey bool) []byte {
	dst = append(dst, codecVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ents)))
	for i := range ents {
		dst = appendEntry(dst, &ents[i], withKey)
	}
	return dst
}

func appendEntry(dst []byte, e *Entry, withKey bool) []byte {
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	if e.Local {
		flags |= flagLocal
	}
	if e.ExpiresAt != 0 {
		flags |= flagExpiry
	}
	if e.ContentType != "" {
		flags |= flagContentType
	}
	if len(e.Value) != 0 {
		flags |= flagValue
	}
	if e.Evicted {
		flags |= flagEvicted
	}
	dst = append(dst, flags)
	if withKey {
		dst = binary.AppendUvarint(dst, uint64(len(e.Key)))
		dst = append(dst, e.Key...)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, e.Version.Time)
	dst = binary.AppendUvarint(dst, e.Version.Node)
	if flags&flagExpiry != 0 {
		dst = binary.AppendVarint(dst, e.ExpiresAt)
	}
	if flags&flagContentType != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.ContentType)))
		dst = append(dst, e.ContentType...)
	}
	if flags&flagValue != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.Value)))
		dst = append(dst, e.Value...)
	}
	return dst
}

// DecodeEntries reads what AppendEntries wrote. The entries own their
// memory (nothing aliases p). Garbage gives an error wrapping ErrCorrupt,
// never a panic.
func DecodeEntries(p []byte) ([]Entry, error) {
	ents, err := decodeEntries(p, nil)
	if err != nil {
		return nil, err
	}
	for i := range ents {
		e := &ents[i]
		e.Key = string([]byte(e.Key))
		e.ContentType = string([]byte(e.ContentType))
		if e.Value != nil {
			e.Value = append([]byte(nil), e.Value...)
		}
	}
	return ents, nil
}

// decodeEntries decodes into dst[:0]. Keys, content types and values alias
// p: the caller copies what it keeps.
func decodeEntries(p []byte, dst []Entry) ([]Entry, error) {
	d := decoder{p: p}
	if v := d.byte(); d.err == nil && v != codecVersion {
		return nil, fmt.Errorf("%w: encoding version %d", ErrCorrupt, v)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p))/minEntryBytes {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrCorrupt, n, len(d.p))
	}
	dst = dst[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		dst = append(dst, d.entry())
	}
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.p))
	}
	if d.err != nil {
		return nil, d.err
	}
	return dst, nil
}

// decoder reads the encoding; the first error sticks and later reads
// return zero values.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.p = nil
}

func (d *decoder) byte() byte {
	if len(d.p) == 0 {
		d.fail("length")
		return 0
	}
	b := d.p[0]
	d.p = d.p[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

// bytes reads a length-prefixed byte string aliasing the input.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)) {
		d.fail(what)
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) entry() Entry {
	var e Entry
	flags := d.byte()
	if flags&^flagAll != 0 {
		d.fail("flags")
		return e
	}
	if flags&flagEvicted != 0 && flags&(flagDeleted|flagLocal|flagContentType|flagValue) != 0 {
		d.fail("flags") // a stub is a replicated entry without a value
		return e
	}
	e.Deleted = flags&flagDeleted != 0
	e.Local = flags&flagLocal != 0
	e.Evicted = flags&flagEvicted != 0
	e.Key = unsafeString(d.bytes("key"))
	e.Version.Time = d.uvarint()
	e.Version.Node = d.uvarint()
	if flags&flagExpiry != 0 {
		if e.ExpiresAt = d.varint(); e.ExpiresAt == 0 {
			d.fail("expiry")
		}
	}
	if flags&flagContentType != 0 {
		if e.ContentType = unsafeString(d.bytes("content type")); e.ContentType == "" {
			d.fail("content type")
		}
	}
	if flags&flagValue != 0 {
		if e.Value = d.bytes("value"); len(e.Value) == 0 {
			d.fail("value")
		}
	}
	return e
}
