package cluster

import (
	"bufio"
	"bytes"
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
// longer than limit or that does not decode is an error. A frame's buffer
// grows as its bytes arrive, never from its declared length.
func readFrames(r io.Reader, limit int, fn func([]engine.Entry) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf bytes.Buffer
	for {
		l, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: frame length: %v", ErrMessage, err)
		}
		if l > uint64(limit) {
			return fmt.Errorf("%w: frame of %d bytes, at most %d", ErrMessage, l, limit)
		}
		buf.Reset()
		if got, err := io.CopyN(&buf, br, int64(l)); err != nil {
			return fmt.Errorf("%w: frame of %d bytes cut after %d: %v", ErrMessage, l, got, err)
		}
		ents, err := engine.DecodeEntries(buf.Bytes())
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMessage, err)
		}
		if err := fn(ents); err != nil {
			return err
		}
	}
}

// frameLimit is the largest frame a peer may send: a batch of BatchBytes,
// or one entry of the largest key, value and content type allowed.
func (n *Node) frameLimit() int {
	return max(n.cfg.BatchBytes, n.cfg.MaxKeyBytes+n.cfg.MaxValueBytes+maxContentTypeBytes) + 1024
}

// purgeVersion is the version of the tombstone that removes e on a stale
// node: just above e, below anything newer written anywhere.
func purgeVersion(v engine.Version) engine.Version {
	if v.Node == math.MaxUint64 {
		return engine.Version{Time: v.Time + 1}
	}
	return engine.Version{Time: v.Time, Node: v.Node + 1}
}
