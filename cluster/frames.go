package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/disperse/disperse/engine"
)

// frameWriter writes entries as frames: a uvarint length, then a batch in
// the engine's encoding of at most about maxBytes.
type frameWriter struct {
	w        *bufio.Writer
	maxBytes int
	batch    []engine.Entry
	size     int
	buf      []byte
}

func newFrameWriter(w io.Writer, maxBytes int) *frameWriter {
	return &frameWriter{w: bufio.NewWriterSize(w, 64<<10), maxBytes: maxBytes}
}

func (f *frameWriter) add(e *engine.Entry) error {
	sz := entrySize(e)
	if len(f.batch) > 0 && f.size+sz > f.maxBytes {
		if err := f.writeBatch(); err != nil {
			return err
		}
	}
	f.batch = append(f.batch, *e)
	f.size += sz
	return nil
}

func (f *frameWriter) writeBatch() error {
	f.buf = engine.AppendEntries(f.buf[:0], f.batch)
	clear(f.batch)
	f.batch, f.size = f.batch[:0], 0
	var l [binary.MaxVarintLen64]byte
	if _, err := f.w.Write(l[:binary.PutUvarint(l[:], uint64(len(f.buf)))]); err != nil {
		return err
	}
	_, err := f.w.Write(f.buf)
	return err
}

func (f *frameWriter) flush() error {
	if len(f.batch) > 0 {
		if err := f.writeBatch(); err != nil {
			return err
		}
	}
	return f.w.Flush()
}

// readFrames reads frames until EOF and hands each batch to fn. A frame
// longer than maxFrameBytes or that does not decode is an error.
func readFrames(r io.Reader, fn func([]engine.Entry) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for {
		l, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: frame length: %v", ErrMessage, err)
		}
		if l > maxFrameBytes {
			return fmt.Errorf("%w: frame of %d bytes", ErrMessage, l)
		}
		if uint64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("%w: frame: %v", ErrMessage, err)
		}
		ents, err := engine.DecodeEntries(buf)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMessage, err)
		}
		if err := fn(ents); err != nil {
			return err
		}
	}
}

// purgeVersion is the version of the tombstone that removes e on a stale
// node: just above e, below anything newer written anywhere.
func purgeVersion(v engine.Version) engine.Version {
	if v.Node == math.MaxUint64 {
		return engine.Version{Time: v.Time + 1}
	}
	return engine.Version{Time: v.Time, Node: v.Node + 1}
}
