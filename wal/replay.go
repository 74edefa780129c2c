package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Replay calls fn for every record with a sequence number greater than
// after, in order, up to the last record committed when Replay began. An
// error from fn stops the replay and is returned. Records up to after may
// have been released; a record after it that was released is an error
// wrapping ErrReleased.
func (l *Log) Replay(after uint64, fn func(seq uint64, payload []byte) error) error {
	if l.isClosed() {
		return ErrClosed
	}
	l.segMu.Lock()
	segs := append([]segment(nil), l.segs...)
	last := l.lastSeq.Load()
	l.segMu.Unlock()
	if first := segs[0].firstSeq; after+1 < first {
		return fmt.Errorf("%w: replay after %d, but the log starts at %d", ErrReleased, after, first)
	}
	for i, seg := range segs {
		if i+1 < len(segs) && segs[i+1].firstSeq <= after+1 {
			continue // every record of seg is at most after
		}
		if err := l.replaySegment(seg, after, last, fn); err != nil {
			return err
		}
	}
	return nil
}

// errStop ends a segment's replay early without an error.
var errStop = errors.New("stop")

// replaySegment calls fn for the records of seg in (after, last].
func (l *Log) replaySegment(seg segment, after, last uint64, fn func(uint64, []byte) error) error {
	f, err := l.fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return ioError("open", seg.path, 0, err)
	}
	defer f.Close()
	r := newSegmentReader(l.tab, f, seg.end)
	for want := seg.firstSeq; want <= last; want++ {
		off := r.off
		seq, payload, err := r.next()
		switch {
		case err != nil && isDecodeError(err), errors.Is(err, errEndOfData):
			return corruptAt(seg.path, off, err)
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return ioError("read", seg.path, off, err)
		case seq != want:
			return corruptAt(seg.path, off, fmt.Errorf("%w: record %d where %d belongs", errSequence, seq, want))
		case seq <= after:
			continue
		}
		if err := fn(seq, payload); err != nil {
			return err
		}
	}
	return nil
}

// Release removes every segment whose records all have sequence numbers
// at most upTo (a snapshot covers them). The segment being written is kept.
// The directory is fsynced after the removal.
func (l *Log) Release(upTo uint64) error {
	if l.isClosed() {
		return ErrClosed
	}
	l.releaseMu.Lock()
	defer l.releaseMu.Unlock()
	l.segMu.Lock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n].lastSeq() <= upTo {
		n++
	}
	gone := append([]segment(nil), l.segs[:n]...)
	l.segs = append([]segment(nil), l.segs[n:]...)
	l.segMu.Unlock()
	if n == 0 {
		return nil
	}
	// Oldest first, stopping at a failure, so that what stays on disk has no
	// gap in it.
	for i, s := range gone {
		if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.segMu.Lock()
			l.segs = append(gone[i:], l.segs...)
			l.segMu.Unlock()
			return ioError("remove", s.path, 0, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return ioError("fsync dir", l.dir, 0, err)
	}
	l.log.Debug("wal: released segments", "count", n, "upTo", upTo)
	return nil
}
