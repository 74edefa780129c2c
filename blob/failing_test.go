package blob

import (
	"errors"
	"sync/atomic"
)

// failingStore is a ShardStore whose writers fail once failAfter blocks
// have been written through it.
type failingStore struct {
	ShardStore
	failAfter int64
	written   atomic.Int64
}

var errDiskBroken = errors.New("disk broken")

func (f *failingStore) Create(ref ShardRef, bs int) (ShardWriter, error) {
	w, err := f.ShardStore.Create(ref, bs)
	if err != nil {
		return nil, err
	}
	return &failingWriter{ShardWriter: w, s: f}, nil
}

type failingWriter struct {
	ShardWriter
	s *failingStore
}

func (w *failingWriter) WriteBlock(p []byte) error {
	if w.s.written.Add(1) > w.s.failAfter {
		return errDiskBroken
	}
	return w.ShardWriter.WriteBlock(p)
}
