package wal

import (
	"errors"
	"fmt"
	"io"
)

// isDecodeError reports whether err says the bytes are not a valid record,
// as opposed to a failure to read them.
func isDecodeError(err error) bool {
	return errors.Is(err, errShort) || errors.Is(err, errFraming) ||
		errors.Is(err, errChecksum) || errors.Is(err, errSequence)
}

// errSequence: a record's sequence number does not continue the log.
var errSequence = errors.New("sequence number out of order")

// scanSegment reads every record of seg from f (size bytes), checks that
// sequence numbers run on from seg.firstSeq and sets seg.end and
// seg.records. In the last segment (last is true) a bad record followed by
// nothing but zeros is a torn tail: it is cut off and the bytes cut are
// returned. Any other bad record is an error wrapping ErrCorrupt.
func (l *Log) scanSegment(f File, size int64, seg *segment, last bool) (int64, error) {
	r := newSegmentReader(l.tab, f, size)
	for {
		off := r.off
		seq, _, err := r.next()
		if err == nil && seq != seg.firstSeq+uint64(seg.records) {
			err = fmt.Errorf("%w: record %d where %d belongs", errSequence, seq, seg.firstSeq+uint64(seg.records))
			r.badEnd, r.off = r.off, off
		}
		switch {
		case err == nil:
			seg.records++
			seg.end = r.off
			continue
		case errors.Is(err, io.EOF):
			return 0, nil
		case errors.Is(err, errEndOfData):
			if nz, err := firstNonZero(f, off, size); err != nil {
				return 0, ioError("read", seg.path, off, err)
			} else if nz >= 0 {
				return 0, corruptAt(seg.path, off, fmt.Errorf("zero length field followed by data at offset %d", nz))
			}
			return 0, nil
		case !isDecodeError(err):
			return 0, ioError("read", seg.path, off, err)
		}
		return l.tornTail(f, size, seg, last, off, r.badEnd, err)
	}
}

// tornTail decides about the bad record at [off, end) of seg: cut it off if
// it is the torn end of the last segment, else report corruption.
func (l *Log) tornTail(f File, size int64, seg *segment, last bool, off, end int64, cause error) (int64, error) {
	if !last {
		return 0, corruptAt(seg.path, off, cause)
	}
	nz, err := firstNonZero(f, end, size)
	if err != nil {
		return 0, ioError("read", seg.path, end, err)
	}
	if nz >= 0 {
		return 0, corruptAt(seg.path, off, fmt.Errorf("%w, followed by data at offset %d", cause, nz))
	}
	if err := cutBack(f, off, max(size, l.opts.SegmentBytes)); err != nil {
		return 0, ioError("cut torn tail of", seg.path, off, err)
	}
	if err := f.Sync(); err != nil {
		return 0, ioError("fsync", seg.path, off, err)
	}
	cut := end - off
	l.log.Warn("wal: cut torn tail", "file", seg.path, "offset", off, "bytes", cut, "reason", cause.Error())
	return cut, nil
}

// corruptAt is the error for a damaged record at off in path.
func corruptAt(path string, off int64, cause error) error {
	return fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, path, off, cause)
}

// firstNonZero returns the offset of the first non-zero byte of f in
// [from, to), or -1 if there is none.
func firstNonZero(f io.ReaderAt, from, to int64) (int64, error) {
	buf := make([]byte, min(zeroChunk, max(to-from, 0)))
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return -1, err
		}
		for i, c := range buf[:n] {
			if c != 0 {
				return off + int64(i), nil
			}
		}
		off += n
	}
	return -1, nil
}

// cutBack removes everything in f from off on, restores the preallocation
// up to size and leaves the file offset at off. Only a failure to truncate
// or seek is returned: without preallocation the file is still correct,
// since the bytes past its end read as the end of data.
func cutBack(f File, off, size int64) error {
	if err := f.Truncate(off); err != nil {
		return err
	}
	if err := preallocate(f, off, size); err != nil {
		_ = f.Truncate(size) // a sparse tail still reads as zeros
	}
	_, err := f.Seek(off, io.SeekStart)
	return err
}
