package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// Record framing; doc.go has the byte layout.
const (
	headerSize  = 24              // length field, sequence number, CRC, reserved
	lenMask     = 1<<56 - 1       // payload length bits of the length field
	recordMark  = uint64(1) << 63 // set in every length field, so a header is never zero
	padShift    = 56              // the padding count sits in bits 56-58
	padMask     = 0x7             // padding count bits, after the shift
	reservedTop = 0x78            // bits 59-62 of the length field: must be zero
)

// castagnoli is the CRC-32C table; a value, not a package variable, so
// nothing is shared between logs.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// padBytes is the number of zero bytes that bring n up to a multiple of 8.
func padBytes(n int) int { return (8 - n%8) % 8 }

// frameSize is the number of bytes a record with an n-byte payload takes.
func frameSize(n int) int64 { return int64(headerSize + n + padBytes(n)) }

// lenField builds the first word of a record header.
func lenField(n int) uint64 {
	return recordMark | uint64(padBytes(n))<<padShift | uint64(n)
}

// recordCRC is the CRC-32C of the length field, the sequence number and the
// payload, in that order, as they are stored.
func recordCRC(tab *crc32.Table, hdr []byte, payload []byte) uint32 {
	c := crc32.Update(0, tab, hdr[0:16])
	return crc32.Update(c, tab, payload)
}

// appendRecord appends the framed record (seq, payload) to buf.
func appendRecord(buf []byte, tab *crc32.Table, seq uint64, payload []byte) []byte {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint64(hdr[0:8], lenField(len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:16], seq)
	binary.LittleEndian.PutUint32(hdr[16:20], recordCRC(tab, hdr[:], payload))
	buf = append(buf, hdr[:]...)
	buf = append(buf, payload...)
	var zeros [8]byte
	buf = append(buf, zeros[:padBytes(len(payload))]...)
	return buf
}
