package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// fetcher reads the stripes [from, to) of one blob from its holders. It
// streams k shards, data shards first; when a shard is missing, its holder
// unreachable, or a block fails its checksum, it opens another shard from
// that stripe on and rebuilds what is missing with Reed-Solomon.
type fetcher struct {
	s        *Store
	m        *Manifest
	enc      encoder
	from, to int
	holders  []Peer // by shard index; Name only when the holder is not live
	live     []bool
	streams  []*blockStream // nil when not open
	dead     []error        // why a shard cannot be used, nil if it can
	spare    [2][][]byte    // per shard, room for a rebuilt block (two sets when ahead)
	// ahead keeps a stripe's shards valid while the next one is read
	// (readAhead).
	ahead  bool
	ctx    context.Context
	cancel context.CancelFunc
	// onCorrupt is told about every block that failed its checksum, with
	// the stripe's rebuilt shards (valid during the call).
	onCorrupt func(index, block int, data []byte)
}

type blockStream struct {
	rc io.ReadCloser
	br blockReader
}

func (s *Store) newFetcher(ctx context.Context, m *Manifest, from, to int) (*fetcher, error) {
	enc, err := s.encoder(m.Data, m.Parity)
	if err != nil {
		return nil, err
	}
	n := m.Data + m.Parity
	f := &fetcher{
		s: s, m: m, enc: enc, from: from, to: to,
		holders: make([]Peer, n), live: make([]bool, n),
		streams: make([]*blockStream, n), dead: make([]error, n),
		spare: [2][][]byte{make([][]byte, n), make([][]byte, n)},
	}
	f.ctx, f.cancel = context.WithCancel(ctx)
	live := s.liveMap()
	for i, sh := range m.Shards {
		p, ok := live[sh.Node]
		if !ok {
			p = Peer{Name: sh.Node}
			f.dead[i] = fmt.Errorf("%w: holder %s is not live", ErrUnavailable, sh.Node)
		}
		f.holders[i], f.live[i] = p, ok
	}
	return f, nil
}

// open opens k shard streams from stripe from, data shards first, and
// fails with ErrUnavailable when fewer than k can be opened.
func (f *fetcher) open() error {
	if f.from >= f.to {
		return nil
	}
	return f.openMore(f.from, f.m.Data)
}

// openMore opens shard streams from block b until want are open.
func (f *fetcher) openMore(b, want int) error {
	open := 0
	for _, st := range f.streams {
		if st != nil {
			open++
		}
	}
	for i := range f.streams {
		if open >= want {
			return nil
		}
		if f.streams[i] != nil || f.dead[i] != nil {
			continue
		}
		rc, err := f.s.openBlocks(f.ctx, f.holders[i], f.m.ref(i), b, f.to)
		if err != nil {
			f.dead[i] = &ShardError{Index: i, Node: f.holders[i].Name, Block: b, Err: err}
			continue
		}
		name := fmt.Sprintf("%s/%x/%d on %s", f.m.ID, f.m.Generation, i, f.holders[i].Name)
		f.streams[i] = &blockStream{rc: rc, br: blockReader{r: rc, name: name, next: uint64(b), ahead: f.ahead}}
		open++
	}
	if open >= want {
		return nil
	}
	return fmt.Errorf("%w: blob %q stripe %d: %d of %d needed shards reachable: %w",
		ErrUnavailable, f.m.ID, b, open, want, errors.Join(f.dead...))
}

// readAhead makes the shards stripe returns valid until the call after
// next, so that one stripe can be read while the one before is used.
func (f *fetcher) readAhead() {
	f.ahead = true
	for _, st := range f.streams {
		if st != nil {
			st.br.ahead = true
		}
	}
}

// exclude keeps the fetcher off shard i (the one being rebuilt), so that
// it is always computed from the others.
func (f *fetcher) exclude(i int) {
	f.kill(i, fmt.Errorf("%w: shard %d is being rebuilt", ErrUnavailable, i))
}

// kill closes shard i's stream for good.
func (f *fetcher) kill(i int, err error) {
	if st := f.streams[i]; st != nil {
		_ = st.rc.Close()
		f.streams[i] = nil
	}
	f.dead[i] = err
}

// close releases every stream.
func (f *fetcher) close() {
	f.cancel()
	for i, st := range f.streams {
		if st != nil {
			_ = st.rc.Close()
			f.streams[i] = nil
		}
	}
}

// stripe returns the shards of stripe b. The k data shards are always
// filled; so is every shard i with need[i] (need may be nil). The slices
// are valid until the next call (the one after it, after readAhead).
func (f *fetcher) stripe(b int, need []bool) ([][]byte, error) {
	n := f.m.Data + f.m.Parity
	c := f.m.blockLen(b)
	shards := make([][]byte, n)
	read := make([]bool, n) // block b already read from stream i
	var corrupt []*ShardError
	for {
		f.readBlocks(b, c, shards, read, &corrupt)
		have := 0
		for _, sh := range shards {
			if sh != nil {
				have++
			}
		}
		if have >= f.m.Data {
			break
		}
		if err := f.openMore(b, countOpenAndRead(f.streams, read)+f.m.Data-have); err != nil {
			for _, se := range corrupt {
				err = fmt.Errorf("%w; %w", err, se)
			}
			return nil, err
		}
	}
	required := make([]bool, n)
	missing := false
	for i := range shards {
		if shards[i] == nil && (i < f.m.Data || need != nil && need[i] || isCorrupt(corrupt, i)) {
			required[i] = true
			missing = true
			spare := f.spare[0]
			if f.ahead {
				spare = f.spare[b&1]
			}
			if cap(spare[i]) < c {
				spare[i] = make([]byte, f.m.BlockBytes())
			}
			shards[i] = spare[i][:0]
		}
	}
	if missing {
		if err := f.enc.ReconstructSome(shards, required); err != nil {
			return nil, fmt.Errorf("%w: blob %q stripe %d: %v", ErrUnavailable, f.m.ID, b, err)
		}
		f.s.met.reconstructed.Inc()
	}
	for _, se := range corrupt {
		if f.onCorrupt != nil {
			f.onCorrupt(se.Index, b, shards[se.Index])
		}
	}
	return shards, nil
}

// readBlocks reads block b (c bytes) from every open stream that has not
// yet given it, in parallel. A block failing its checksum is left out and
// noted in corrupt; a stream failing otherwise is closed for good.
func (f *fetcher) readBlocks(b, c int, shards [][]byte, read []bool, corrupt *[]*ShardError) {
	errs := make([]error, len(f.streams))
	var wg sync.WaitGroup
	for i, st := range f.streams {
		if st == nil || read[i] {
			continue
		}
		read[i] = true
		wg.Go(func() {
			shards[i], errs[i] = st.br.read(c)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		shards[i] = nil
		serr := &ShardError{Index: i, Node: f.holders[i].Name, Block: b, Err: err}
		if errors.Is(err, ErrCorrupt) {
			*corrupt = append(*corrupt, serr)
			f.s.log.Warn("shard block failed its checksum", slog.String("id", f.m.ID), slog.Any("err", serr))
			continue
		}
		f.kill(i, serr)
	}
}

// countOpenAndRead counts streams that are open and have already given
// their block.
func countOpenAndRead(streams []*blockStream, read []bool) int {
	n := 0
	for i, st := range streams {
		if st != nil && read[i] {
			n++
		}
	}
	return n
}

func isCorrupt(bad []*ShardError, i int) bool {
	for _, se := range bad {
		if se.Index == i {
			return true
		}
	}
	return false
}
