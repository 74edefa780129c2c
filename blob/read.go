package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Open returns the manifest of blob id and a reader of length bytes from
// offset (length < 0: to the end). See Lookup and ReadManifest.
func (s *Store) Open(ctx context.Context, id string, offset, length int64) (Manifest, io.ReadCloser, error) {
	for try := 0; ; try++ {
		m, err := s.Lookup(ctx, id)
		if err != nil {
			return Manifest{}, nil, err
		}
		rc, err := s.ReadManifest(ctx, m, offset, length)
		if errors.Is(err, ErrStale) && try == 0 {
			continue // replaced since this node heard: read the new one
		}
		if err != nil {
			return Manifest{}, nil, err
		}
		return m, rc, nil
	}
}

// ReadManifest returns a reader of length bytes from offset (length < 0:
// to the end) of the blob m describes. It reads only the stripes the range
// covers. Before returning it opens k shard streams for them, and fails
// with ErrUnavailable when fewer than k can be had, so no byte is sent of
// a read that cannot finish for want of shards. An offset past the end is
// ErrBadRange (except offset 0 of an empty blob).
//
// A read of the whole blob checks its sha256 as it goes: the last stripe
// is hashed before any of its bytes is handed out, and on a mismatch the
// reader fails with ErrChecksum instead, so that an HTTP answer is cut
// short rather than ended as if complete.
func (s *Store) ReadManifest(ctx context.Context, m Manifest, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || offset > m.Size || offset == m.Size && m.Size > 0 {
		return nil, fmt.Errorf("%w: offset %d of blob %q of %d bytes", ErrBadRange, offset, m.ID, m.Size)
	}
	if length < 0 || length > m.Size-offset {
		length = m.Size - offset
	}
	if s.bgCtx.Err() != nil {
		return nil, ErrClosed
	}
	s.met.reads.Inc()
	if length == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	from := int(offset / m.StripeBytes)
	to := int((offset+length-1)/m.StripeBytes) + 1
	f, err := s.newFetcher(ctx, &m, from, to)
	if err != nil {
		return nil, err
	}
	f.onCorrupt = s.repairBlockLater(f)
	if err := f.open(); err != nil {
		f.close()
		return nil, s.staleOr(ctx, &m, err)
	}
	br := &blobReader{f: f, next: from, skip: int(offset - int64(from)*m.StripeBytes), left: length, met: s.met}
	if offset == 0 && length == m.Size {
		br.hash = sha256.New()
	}
	return br, nil
}

// staleOr returns err, the failure to open enough shards of m, unless m
// is stale: when holders answered that they have no such shard, this node
// may have missed the announcement of a DELETE or a replacing PUT, whose
// old shards are gone. It then asks the likely holders for the record of
// the blob: deleted is ErrNotFound, replaced is ErrStale.
func (s *Store) staleOr(ctx context.Context, m *Manifest, err error) error {
	if !errors.Is(err, ErrNoShard) {
		return err
	}
	s.askHolders(ctx, m.ID)
	rec, ok, rerr := s.localRecord(m.ID)
	switch {
	case rerr != nil:
		return err
	case !ok || rec.Deleted:
		return fmt.Errorf("%w: blob %q was deleted", ErrNotFound, m.ID)
	case rec.Manifest != nil && rec.Manifest.Generation != m.Generation:
		return fmt.Errorf("%w: blob %q was replaced", ErrStale, m.ID)
	}
	return err
}

// blobReader hands out a byte range stripe by stripe.
type blobReader struct {
	f    *fetcher
	next int    // next stripe to fetch
	skip int    // bytes to skip at the start of the next stripe
	left int64  // bytes still to hand out
	cur  []byte // rest of the current stripe
	buf  []byte
	err  error
	hash hash.Hash // of the whole blob, when the read covers it
	met  *metrics
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(r.cur) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		if err := r.fetch(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	r.left -= int64(n)
	return n, nil
}

// fetch assembles the data of the next stripe into r.cur.
func (r *blobReader) fetch() error {
	m := r.f.m
	shards, err := r.f.stripe(r.next, nil)
	if err != nil {
		return err
	}
	if r.buf == nil {
		r.buf = make([]byte, 0, m.StripeBytes)
	}
	r.buf = r.buf[:0]
	for _, sh := range shards[:m.Data] {
		r.buf = append(r.buf, sh...)
	}
	data := r.buf[:m.stripeLen(r.next)]
	if err := r.check(data); err != nil {
		return err
	}
	data = data[r.skip:]
	r.skip = 0
	if int64(len(data)) > r.left {
		data = data[:r.left]
	}
	r.cur = data
	r.next++
	return nil
}

// WriteTo writes the rest of the range to w (io.Copy calls it): each
// stripe's data blocks go to w as the fetcher holds them, without being
// assembled into a stripe buffer or copied through io.Copy's. The next
// stripe is read from its holders while this one is hashed and written.
// (Hashing beside the write as well was measured slower: on two cores it
// takes the CPU the reading client needs.) The last stripe of a whole-blob
// read is checked before any of it is written, as in Read.
func (r *blobReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(r.cur) > 0 {
		n, err := w.Write(r.cur)
		total += int64(n)
		r.left -= int64(n)
		r.cur = nil
		if err != nil {
			r.err = err
			return total, err
		}
	}
	if r.left == 0 || r.err != nil {
		return total, r.err
	}
	m := r.f.m
	last := int((int64(r.next)*m.StripeBytes + int64(r.skip) + r.left - 1) / m.StripeBytes)
	stripes := r.readAhead(r.next, last)
	defer func() { stripes.stop(r.err != nil) }()
	var pieces [][]byte
	for r.left > 0 && r.err == nil {
		st, ok := <-stripes.c
		if !ok {
			r.err = fmt.Errorf("blob: read of %q ended early", m.ID)
			break
		}
		if st.err != nil {
			r.err = st.err
			break
		}
		pieces = pieces[:0]
		rest := m.stripeLen(r.next)
		for _, sh := range st.shards[:m.Data] {
			if rest == 0 {
				break
			}
			p := sh[:min(len(sh), rest)]
			pieces = append(pieces, p)
			rest -= len(p)
		}
		if err := r.check(pieces...); err != nil {
			r.err = err
			break
		}
		n, err := r.writePieces(w, pieces)
		total += n
		if err != nil {
			r.err = err
			break
		}
		r.next++
	}
	return total, r.err
}

// writePieces writes pieces to w after r.skip bytes, up to r.left.
func (r *blobReader) writePieces(w io.Writer, pieces [][]byte) (int64, error) {
	var total int64
	skip := r.skip
	r.skip = 0
	for _, p := range pieces {
		if skip >= len(p) {
			skip -= len(p)
			continue
		}
		p = p[skip:]
		skip = 0
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
		n, err := w.Write(p)
		total += int64(n)
		r.left -= int64(n)
		if err != nil || r.left == 0 {
			return total, err
		}
	}
	return total, nil
}

// fetched is one stripe read ahead.
type fetched struct {
	shards [][]byte
	err    error
}

// prefetch hands out stripes read by a goroutine of their own.
type prefetch struct {
	c    chan fetched
	quit chan struct{}
	f    *fetcher
	done sync.WaitGroup
}

// readAhead starts reading stripes first..last, each handed out on the
// returned channel. The goroutine reads stripe b+1 once stripe b is
// taken, into the buffers of stripe b-1 (the fetcher keeps two sets),
// which the taker is done with by then.
func (r *blobReader) readAhead(first, last int) *prefetch {
	p := &prefetch{c: make(chan fetched), quit: make(chan struct{}), f: r.f}
	r.f.readAhead()
	p.done.Go(func() {
		defer close(p.c)
		for b := first; b <= last; b++ {
			shards, err := r.f.stripe(b, nil)
			select {
			case p.c <- fetched{shards, err}:
			case <-p.quit:
				return
			}
			if err != nil {
				return
			}
		}
	})
	return p
}

// stop ends the reading goroutine and waits for it. After a failed read
// (failed) a stripe it is still reading is cut short by cancelling the
// fetcher's streams; after a complete one it has nothing left to read.
func (p *prefetch) stop(failed bool) {
	close(p.quit)
	if failed {
		p.f.cancel()
	}
	p.done.Wait()
}

// check hashes the data of the stripe about to be handed out, in pieces,
// when the read covers the whole blob, and compares the hash with the
// manifest's at the last stripe.
func (r *blobReader) check(pieces ...[]byte) error {
	if r.hash == nil {
		return nil
	}
	for _, p := range pieces {
		r.hash.Write(p)
	}
	m := r.f.m
	if r.next < m.Stripes()-1 {
		return nil
	}
	if got := hex.EncodeToString(r.hash.Sum(nil)); got != m.SHA256 {
		r.met.checksumFailures.Inc()
		return fmt.Errorf("%w: blob %q read back as %s, manifest says %s", ErrChecksum, m.ID, got, m.SHA256)
	}
	return nil
}

func (r *blobReader) Close() error {
	r.f.close()
	if r.err == nil {
		r.err = fmt.Errorf("blob: read of %q closed", r.f.m.ID)
	}
	return nil
}

// repairBlockLater returns the fetcher's onCorrupt hook: it rewrites the
// bad block on its holder from the rebuilt data, in the background.
func (s *Store) repairBlockLater(f *fetcher) func(index, block int, data []byte) {
	return func(index, block int, data []byte) {
		p := f.holders[index]
		ref := f.m.ref(index)
		data = bytes.Clone(data)
		s.goBackground(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := s.rewriteBlock(ctx, p, ref, block, data); err != nil {
				s.log.Warn("repairing shard block", slog.String("id", ref.ID), slog.Int("index", index),
					slog.Int("block", block), slog.String("node", p.Name), slog.Any("err", err))
				return
			}
			s.met.repairedBlock.Inc()
			s.log.Info("repaired shard block", slog.String("id", ref.ID), slog.Int("index", index),
				slog.Int("block", block), slog.String("node", p.Name))
		})
	}
}
