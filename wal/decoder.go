package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Reasons a record fails to decode. The scanner wraps them in ErrCorrupt
// with the file and offset, or treats them as a torn tail.
var (
	errEndOfData = errors.New("end of data")              // a zero length field
	errShort     = errors.New("record cut short")         // the frame runs past the data
	errFraming   = errors.New("bad record framing")       // reserved bits, padding count or padding bytes
	errChecksum  = errors.New("record checksum mismatch") // CRC-32C does not match
)

// header is a parsed record header.
type header struct {
	length uint64 // payload bytes
	seq    uint64
	crc    uint32
}

// frame is the number of bytes of the whole record.
func (h header) frame() int64 { return frameSize(int(h.length)) }

// parseHeader checks and parses the first headerSize bytes of b.
// A header of zeros is errEndOfData.
func parseHeader(b []byte) (header, error) {
	lf := binary.LittleEndian.Uint64(b[0:8])
	if lf == 0 {
		return header{}, errEndOfData
	}
	h := header{
		length: lf & lenMask,
		seq:    binary.LittleEndian.Uint64(b[8:16]),
		crc:    binary.LittleEndian.Uint32(b[16:20]),
	}
	top := byte(lf >> padShift)
	switch {
	case lf&recordMark == 0, top&reservedTop != 0:
		return h, fmt.Errorf("%w: length field %#016x", errFraming, lf)
	case binary.LittleEndian.Uint32(b[20:24]) != 0:
		return h, fmt.Errorf("%w: reserved word not zero", errFraming)
	}
	// The payload length is below 2^56, so it fits an int on 64-bit builds;
	// the padding is recomputed from the low bits and must agree.
	if pad := int(top & padMask); pad != padBytes(int(h.length%8)) {
		return h, fmt.Errorf("%w: padding %d for length %d", errFraming, pad, h.length)
	}
	return h, nil
}

// checkBody verifies the payload and padding that follow header h, whose
// raw bytes are hdr. body holds exactly length+padding bytes.
func checkBody(tab *crc32.Table, hdr []byte, h header, body []byte) ([]byte, error) {
	payload := body[:h.length]
	for _, c := range body[h.length:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: padding not zero", errFraming)
		}
	}
	if got := recordCRC(tab, hdr, payload); got != h.crc {
		return nil, fmt.Errorf("%w: stored %#08x, computed %#08x", errChecksum, h.crc, got)
	}
	return payload, nil
}

// decodeRecord decodes the record at the start of b. It returns the
// sequence number, the payload (aliasing b) and the record's size in bytes.
// It never reads past b and never allocates by the length field.
func decodeRecord(tab *crc32.Table, b []byte) (seq uint64, payload []byte, n int64, err error) {
	if len(b) < headerSize {
		if allZero(b) {
			return 0, nil, 0, errEndOfData
		}
		return 0, nil, 0, errShort
	}
	h, err := parseHeader(b)
	if err != nil {
		return 0, nil, 0, err
	}
	if h.length > uint64(len(b)-headerSize) || h.frame() > int64(len(b)) {
		return h.seq, nil, 0, errShort
	}
	n = h.frame()
	payload, err = checkBody(tab, b[:headerSize], h, b[headerSize:n])
	if err != nil {
		return h.seq, nil, 0, err
	}
	return h.seq, payload, n, nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// segmentReader decodes records one after another from the first size
// bytes of a segment.
type segmentReader struct {
	tab  *crc32.Table
	r    *bufio.Reader
	size int64 // bytes that may be read
	off  int64 // offset of the next record
	hdr  [headerSize]byte
	body []byte // reused payload buffer
	// badEnd is where the record that last failed to decode ends, as far
	// as its header can tell: the whole frame when the length field is
	// usable (capped at size), else just the header.
	badEnd int64
}

func newSegmentReader(tab *crc32.Table, r io.ReaderAt, size int64) *segmentReader {
	return &segmentReader{tab: tab, r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<20), size: size}
}

// next returns the record at s.off and advances past it. The payload is
// valid until the following call. At the end of the data it returns
// errEndOfData (a zero header) or io.EOF (no bytes left). On any other
// error s.off stays at the start of the bad record.
func (s *segmentReader) next() (uint64, []byte, error) {
	rest := s.size - s.off
	s.badEnd = min(s.off+headerSize, s.size)
	if rest == 0 {
		return 0, nil, io.EOF
	}
	if rest < headerSize {
		tail := s.hdr[:rest]
		if _, err := io.ReadFull(s.r, tail); err != nil {
			return 0, nil, err
		}
		if allZero(tail) {
			return 0, nil, errEndOfData
		}
		return 0, nil, errShort
	}
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		return 0, nil, err
	}
	h, err := parseHeader(s.hdr[:])
	if err != nil {
		return 0, nil, err
	}
	if h.length > uint64(rest) || h.frame() > rest {
		s.badEnd = s.size
		return h.seq, nil, errShort
	}
	s.badEnd = s.off + h.frame()
	bodyLen := int(h.frame() - headerSize)
	if cap(s.body) < bodyLen {
		s.body = make([]byte, bodyLen)
	}
	body := s.body[:bodyLen]
	if _, err := io.ReadFull(s.r, body); err != nil {
		return 0, nil, err
	}
	payload, err := checkBody(s.tab, s.hdr[:], h, body)
	if err != nil {
		return h.seq, nil, err
	}
	s.off += h.frame()
	return h.seq, payload, nil
}
