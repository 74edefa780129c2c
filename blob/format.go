package blob

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// On-disk and on-wire format of shards; doc.go describes it with an example.
const (
	fileMagic      = "DSPSHARD"
	fileVersion    = 1
	fileFixedLen   = 8 + 2 + 2 + 4 + 8 + 2 // magic, version, index, block size, generation, id length
	blockHeaderLen = 16                    // crc32c, length, index
	// endMarker in a block header's length field ends a shard on the wire;
	// its index field is the number of blocks sent.
	endMarker = 0xFFFFFFFF
	// maxBlockSize bounds a block so a damaged header cannot ask for a huge
	// allocation.
	maxBlockSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileHeader is the header of a shard file.
type fileHeader struct {
	Ref       ShardRef
	BlockSize int
}

// encodeFileHeader returns the bytes of h: the fixed part, the id, and a
// CRC-32C of everything before it.
func encodeFileHeader(h fileHeader) []byte {
	b := make([]byte, 0, fileFixedLen+len(h.Ref.ID)+4)
	b = append(b, fileMagic...)
	b = binary.LittleEndian.AppendUint16(b, fileVersion)
	b = binary.LittleEndian.AppendUint16(b, uint16(h.Ref.Index))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.BlockSize))
	b = binary.LittleEndian.AppendUint64(b, h.Ref.Gen)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Ref.ID)))
	b = append(b, h.Ref.ID...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeFileHeader reads a shard file header from r and returns it with
// its length in bytes.
func decodeFileHeader(r io.Reader) (fileHeader, int, error) {
	var h fileHeader
	fixed := make([]byte, fileFixedLen)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return h, 0, fmt.Errorf("%w: file header: %v", ErrCorrupt, err)
	}
	if string(fixed[:8]) != fileMagic {
		return h, 0, fmt.Errorf("%w: file header: bad magic %q", ErrCorrupt, fixed[:8])
	}
	if v := binary.LittleEndian.Uint16(fixed[8:]); v != fileVersion {
		return h, 0, fmt.Errorf("%w: file header: unknown version %d", ErrCorrupt, v)
	}
	idLen := int(binary.LittleEndian.Uint16(fixed[24:]))
	if idLen < 1 || idLen > maxIDLen {
		return h, 0, fmt.Errorf("%w: file header: id length %d", ErrCorrupt, idLen)
	}
	rest := make([]byte, idLen+4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, 0, fmt.Errorf("%w: file header: %v", ErrCorrupt, err)
	}
	crc := crc32.Update(crc32.Checksum(fixed, castagnoli), castagnoli, rest[:idLen])
	if want := binary.LittleEndian.Uint32(rest[idLen:]); crc != want {
		return h, 0, fmt.Errorf("%w: file header: checksum %08x, want %08x", ErrCorrupt, crc, want)
	}
	h.Ref.Index = int(binary.LittleEndian.Uint16(fixed[10:]))
	h.BlockSize = int(binary.LittleEndian.Uint32(fixed[12:]))
	h.Ref.Gen = binary.LittleEndian.Uint64(fixed[16:])
	h.Ref.ID = string(rest[:idLen])
	if h.BlockSize < 1 || h.BlockSize > maxBlockSize {
		return h, 0, fmt.Errorf("%w: file header: block size %d", ErrCorrupt, h.BlockSize)
	}
	if err := validateID(h.Ref.ID); err != nil {
		return h, 0, fmt.Errorf("%w: file header: %v", ErrCorrupt, err)
	}
	return h, fileFixedLen + idLen + 4, nil
}

// blockHeader precedes every block: CRC-32C of bytes 4..16 of the header
// followed by the data, the data length, and the block's number.
type blockHeader struct {
	CRC    uint32
	Length uint32
	Index  uint64
}

// putBlockHeader fills h (blockHeaderLen bytes) for block index holding p.
func putBlockHeader(h []byte, index uint64, p []byte) {
	binary.LittleEndian.PutUint32(h[4:], uint32(len(p)))
	binary.LittleEndian.PutUint64(h[8:], index)
	crc := crc32.Update(crc32.Checksum(h[4:blockHeaderLen], castagnoli), castagnoli, p)
	binary.LittleEndian.PutUint32(h[0:], crc)
}

// putEndHeader fills h with the end-of-shard marker after count blocks.
func putEndHeader(h []byte, count uint64) {
	binary.LittleEndian.PutUint32(h[4:], endMarker)
	binary.LittleEndian.PutUint64(h[8:], count)
	binary.LittleEndian.PutUint32(h[0:], crc32.Checksum(h[4:blockHeaderLen], castagnoli))
}

// decodeBlockHeader parses a block header. It checks only what the header
// alone can tell: its length and, for an end marker, its checksum; the
// checksum of a data block is checked by verify.
func decodeBlockHeader(b []byte) (blockHeader, error) {
	if len(b) < blockHeaderLen {
		return blockHeader{}, fmt.Errorf("%w: block header of %d bytes", ErrCorrupt, len(b))
	}
	h := blockHeader{
		CRC:    binary.LittleEndian.Uint32(b[0:]),
		Length: binary.LittleEndian.Uint32(b[4:]),
		Index:  binary.LittleEndian.Uint64(b[8:]),
	}
	if h.Length == endMarker {
		if crc := crc32.Checksum(b[4:blockHeaderLen], castagnoli); crc != h.CRC {
			return h, fmt.Errorf("%w: end marker checksum %08x, want %08x", ErrCorrupt, crc, h.CRC)
		}
		return h, nil
	}
	if h.Length > maxBlockSize {
		return h, fmt.Errorf("%w: block length %d", ErrCorrupt, h.Length)
	}
	return h, nil
}

// verify checks that raw (header and data, as read) is block index of
// length n.
func verifyBlock(raw []byte, index uint64, n int) error {
	h, err := decodeBlockHeader(raw)
	if err != nil {
		return err
	}
	if h.Length != uint32(n) || h.Index != index {
		return fmt.Errorf("%w: header says block %d of %d bytes, want block %d of %d", ErrCorrupt, h.Index, h.Length, index, n)
	}
	crc := crc32.Update(crc32.Checksum(raw[4:blockHeaderLen], castagnoli), castagnoli, raw[blockHeaderLen:blockHeaderLen+n])
	if crc != h.CRC {
		return fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, crc, h.CRC)
	}
	return nil
}

// blockReader reads consecutive framed blocks from a stream. A block that
// fails its checksum is reported as ErrCorrupt and the stream stays usable
// (blocks have known lengths); any other error ends the stream.
type blockReader struct {
	r    io.Reader
	name string // the shard, for errors
	next uint64 // number of the next block
	bufs [2][]byte
	// ahead alternates two buffers, so that a block's data stays valid
	// while the next one is read.
	ahead bool
}

// read reads block b.next, which must be n bytes long, and returns its data
// (valid until the next call, or the one after it when ahead is set).
func (br *blockReader) read(n int) ([]byte, error) {
	index := br.next
	buf := &br.bufs[0]
	if br.ahead {
		buf = &br.bufs[index&1]
	}
	if cap(*buf) < blockHeaderLen+n {
		*buf = make([]byte, blockHeaderLen+n)
	}
	raw := (*buf)[:blockHeaderLen+n]
	if _, err := io.ReadFull(br.r, raw); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("shard %s block %d: %w", br.name, index, err)
	}
	br.next++
	if err := verifyBlock(raw, index, n); err != nil {
		return nil, fmt.Errorf("shard %s block %d: %w", br.name, index, err)
	}
	return raw[blockHeaderLen:], nil
}
