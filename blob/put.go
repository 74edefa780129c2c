package blob

import (
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

// PutOptions are the per-blob settings of Put.
type PutOptions struct {
	// Data is k. Default Config.DataShards.
	Data int
	// Parity is m. Default Config.ParityShards; NoParity means none.
	Parity int
	// ContentType is kept in the manifest.
	ContentType string
	// If makes the Put conditional on the blob it replaces.
	If Condition
}

// Condition makes a Put or Delete depend on the blob it would replace,
// named by its sha256 (the ETag GET gives, without quotes). It is checked
// against the manifest the compare-and-set replaces, so it holds at the
// moment of the change on the node that makes it. The zero Condition
// always holds.
type Condition struct {
	// IfMatch: "*" wants a blob to exist; a sha256 wants the blob to have it.
	IfMatch string
	// IfNoneMatch: "*" wants no blob; a sha256 wants the blob not to have it.
	IfNoneMatch string
}

// holds reports whether c is met when cur is the current blob (nil: none).
func (c Condition) holds(cur *Manifest) bool {
	if c.IfMatch != "" && (cur == nil || c.IfMatch != "*" && cur.SHA256 != c.IfMatch) {
		return false
	}
	return c.IfNoneMatch == "" || cur == nil || c.IfNoneMatch != "*" && cur.SHA256 != c.IfNoneMatch
}

// check fails with ErrPrecondition when c does not hold for blob id as
// this node knows it now (asking the likely holders when it knows none).
// It spares a doomed upload; the compare-and-set checks again.
func (s *Store) check(ctx context.Context, id string, c Condition) error {
	if c == (Condition{}) {
		return nil
	}
	if _, ok, _ := s.localRecord(id); !ok {
		s.askHolders(ctx, id)
	}
	cur, ok, err := s.settled(ctx, id)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return err
	}
	if !ok {
		cur.Manifest = nil
	}
	if !c.holds(cur.Manifest) {
		return fmt.Errorf("%w: blob %q", ErrPrecondition, id)
	}
	return nil
}

// Put stores the bytes of r as blob id, streaming stripe by stripe to the
// shard holders, and returns its manifest. A holder that does not answer
// is replaced by the next node in the blob's rendezvous order (see
// openHolders). The manifest is written once every shard is committed, by
// compare-and-set on the record it replaces, and then sent to every other
// live node, so that any of them serves the blob when Put returns. A
// holder that stops answering during the upload is given up while at most
// Parity are (see waitSinks); the manifest's tolerates says what is left. A
// previous blob of that id is replaced then; its shards are removed once
// every live node has the new manifest, or otherwise by their holders
// after CleanupGrace. On any failure, or when ctx is cancelled, the new
// shards are removed everywhere and nothing changes.
func (s *Store) Put(ctx context.Context, id string, r io.Reader, opt PutOptions) (Manifest, error) {
	if err := validateID(id); err != nil {
		return Manifest{}, err
	}
	if s.bgCtx.Err() != nil {
		return Manifest{}, ErrClosed
	}
	started := time.Now()
	k, m := opt.Data, opt.Parity
	if k == 0 {
		k = s.cfg.DataShards
	}
	switch m {
	case 0:
		m = s.cfg.ParityShards
	case NoParity:
		m = 0
	}
	if err := validateParams(k, m); err != nil {
		return Manifest{}, err
	}
	if err := s.check(ctx, id, opt.If); err != nil {
		return Manifest{}, err
	}
	enc, err := s.encoder(k, m)
	if err != nil {
		return Manifest{}, err
	}
	live := s.members.Live()
	if len(live) == 0 {
		return Manifest{}, fmt.Errorf("%w: no live node to hold blob %q", ErrTooFewNodes, id)
	}
	bs := blockSize(s.cfg.StripeBytes, k, m)
	man := Manifest{
		ID: id, Data: k, Parity: m, StripeBytes: int64(bs) * int64(k),
		ContentType: opt.ContentType, Generation: newGeneration(),
	}
	sinks, err := s.openHolders(ctx, &man, rank(id, live))
	if err != nil {
		return Manifest{}, err
	}
	if err := s.upload(ctx, &man, sinks, enc, r); err != nil {
		s.discard(&man)
		return Manifest{}, err
	}
	rec, old, err := s.writeRecord(ctx, &man, opt.If)
	if err != nil {
		s.discard(&man)
		return Manifest{}, err
	}
	published := time.Now()
	everyone := s.publish(ctx, id, rec)
	s.met.publishSeconds.Add(time.Since(published).Seconds())
	s.met.putSeconds.Add(time.Since(started).Seconds())
	s.met.puts.Inc()
	s.met.putBytes.Add(float64(man.Size))
	if old != nil && old.Generation != man.Generation {
		if everyone {
			s.goBackground(func(ctx context.Context) {
				s.removeShards(ctx, old.ID, old.Generation, old.holders())
			})
		} else {
			s.log.Info("replaced blob's shards left to their holders' cleanup: not every node took the new manifest",
				slog.String("id", id))
		}
	}
	return man.clone(), nil
}

// transferMemory bounds the stripe buffers of one upload: two stripes
// (one being encoded, one being sent) of k+m blocks each. The default
// code, 4+2 with 1 MiB blocks, takes 12 MiB of it; a wide code gets
// smaller blocks instead of more memory.
const transferMemory = 32 << 20

// blockSize is the bytes of each shard per stripe for a blob of k data
// and m parity shards: StripeBytes spread over k, within transferMemory.
func blockSize(stripeBytes, k, m int) int {
	return min((stripeBytes+k-1)/k, transferMemory/(2*(k+m)))
}

// discard removes an unfinished upload's shards from every holder.
func (s *Store) discard(man *Manifest) {
	s.removeShards(s.bgCtx, man.ID, man.Generation, man.holders())
}

// openHolders starts a shard writer for every shard of man and fills its
// shard list and tolerates. Shard i goes to the i-th node of ranked,
// wrapping around when there are fewer nodes than shards, as place does.
// A node that does not answer (ErrUnavailable: refused, timed out,
// stalled) is given up for this blob and its shards go to the next nodes
// of ranked, those holding no shard first. Any other failure (a full
// disk, a bad request) fails the upload.
func (s *Store) openHolders(ctx context.Context, man *Manifest, ranked []Peer) ([]*sink, error) {
	n := man.Data + man.Parity
	holders := make([]Peer, n)
	writers := make([]ShardWriter, n)
	abort := func() {
		for _, w := range writers {
			if w != nil {
				w.Abort()
			}
		}
	}
	failed := map[string]bool{}
	count := map[string]int{}
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	var lastErr error
	for len(todo) > 0 {
		for _, i := range todo {
			p, ok := pickHolder(ranked, failed, count)
			if !ok {
				abort()
				return nil, fmt.Errorf("%w: no node took the shards of blob %q: %w", ErrUnavailable, man.ID, lastErr)
			}
			holders[i] = p
			count[p.Name]++
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for _, i := range todo {
			wg.Go(func() { writers[i], errs[i] = s.create(ctx, holders[i], man.ref(i), man.BlockBytes()) })
		}
		wg.Wait()
		var again []int
		var fatal error
		for _, i := range todo {
			if errs[i] == nil {
				continue
			}
			writers[i] = nil
			count[holders[i].Name]--
			lastErr = &ShardError{Index: i, Node: holders[i].Name, Block: -1, Err: diskError(errs[i])}
			if !replaceable(errs[i]) || ctx.Err() != nil {
				fatal = lastErr
				continue
			}
			if !failed[holders[i].Name] {
				failed[holders[i].Name] = true
				s.met.holdersReplaced.Inc()
				s.log.Warn("shard holder did not answer; placing its shards on the next node",
					slog.String("id", man.ID), slog.String("node", holders[i].Name), slog.Any("err", errs[i]))
			}
			again = append(again, i)
		}
		if fatal != nil {
			abort()
			return nil, fatal
		}
		todo = again
	}
	man.Shards = make([]Shard, n)
	sinks := make([]*sink, n)
	for i, p := range holders {
		man.Shards[i] = Shard{Index: i, Node: p.Name}
		sinks[i] = startSink(i, p.Name, writers[i])
	}
	man.Tolerates = tolerates(man.holders(), man.Data)
	return sinks, nil
}

// pickHolder returns the first node of ranked that has not failed and
// holds the fewest shards so far.
func pickHolder(ranked []Peer, failed map[string]bool, count map[string]int) (Peer, bool) {
	best, found := Peer{}, false
	for _, p := range ranked {
		if failed[p.Name] {
			continue
		}
		if !found || count[p.Name] < count[best.Name] {
			best, found = p, true
		}
	}
	return best, found
}

// replaceable reports whether a failure to create a shard on a node means
// that the node does not answer, so another may take the shard.
func replaceable(err error) bool {
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrDiskFull)
}

// upload streams r into the shard sinks of man and commits them all,
// filling man's size, sha256 and creation time.
func (s *Store) upload(ctx context.Context, man *Manifest, sinks []*sink, enc encoder, r io.Reader) error {
	h := sha256.New()
	size, err := encodeStream(ctx, r, h, enc, man.Parity, man.BlockBytes(), sinks)
	if err != nil {
		abortSinks(sinks)
		return err
	}
	if err := commitSinks(sinks, man.Parity); err != nil {
		return err
	}
	var kept []string
	for _, sk := range sinks {
		if sk.lost == nil {
			kept = append(kept, sk.node)
			continue
		}
		s.met.shardsLost.Inc()
		s.log.Warn("shard holder stopped answering during the upload; the blob is stored without that shard until repair rebuilds it",
			slog.String("id", man.ID), slog.Int("shard", sk.index), slog.String("node", sk.node), slog.Any("err", sk.lost))
	}
	man.Tolerates = tolerates(kept, man.Data)
	man.Size = size
	man.SHA256 = hex.EncodeToString(h.Sum(nil))
	man.CreatedAt = s.cfg.Now().UTC()
	s.log.Debug("blob stored", slog.String("id", man.ID), slog.Int64("size", size))
	return nil
}

// encoder is the part of reedsolomon.Encoder the store uses.
type encoder interface {
	Encode(shards [][]byte) error
	ReconstructSome(shards [][]byte, required []bool) error
}

// stripeBufs is one stripe's worth of buffers: the data, cut into k
// shards, and m parity shards.
type stripeBufs struct {
	data   []byte
	parity [][]byte
	shards [][]byte
}

func newStripeBufs(k, m, bs int) *stripeBufs {
	sb := &stripeBufs{data: make([]byte, k*bs), parity: make([][]byte, m), shards: make([][]byte, k+m)}
	for j := range sb.parity {
		sb.parity[j] = make([]byte, bs)
	}
	return sb
}

// fill reads the next stripe from r, hashes it and encodes it. It returns
// the data bytes read (0 at the end) and whether this was the last stripe.
func (sb *stripeBufs) fill(r io.Reader, h hash.Hash, enc encoder, k, bs int) (int, bool, error) {
	n, err := readFull(r, sb.data)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", ErrBodyRead, err)
	}
	if n == 0 {
		return 0, true, nil
	}
	h.Write(sb.data[:n])
	last := n < len(sb.data)
	c := bs
	if last {
		c = (n + k - 1) / k
		clear(sb.data[n : k*c])
	}
	for i := range k {
		sb.shards[i] = sb.data[i*c : (i+1)*c]
	}
	for j, p := range sb.parity {
		sb.shards[k+j] = p[:c]
	}
	if err := enc.Encode(sb.shards); err != nil {
		return 0, false, fmt.Errorf("blob: encoding: %w", err)
	}
	return n, last, nil
}

// encodeStream reads r stripe by stripe, encodes each and hands its shards
// to the sinks. Two stripes are in memory: one being written while the
// next is read and encoded.
func encodeStream(ctx context.Context, r io.Reader, h hash.Hash, enc encoder, m, bs int, sinks []*sink) (int64, error) {
	k := len(sinks) - m
	bufs := [2]*stripeBufs{newStripeBufs(k, m, bs), newStripeBufs(k, m, bs)}
	var size int64
	inFlight := false
	for cur := 0; ; cur ^= 1 {
		if err := ctx.Err(); err != nil {
			if inFlight {
				_ = waitSinks(sinks, 0)
			}
			return 0, fmt.Errorf("blob: upload cancelled: %w", err)
		}
		n, last, err := bufs[cur].fill(r, h, enc, k, bs)
		if inFlight {
			if werr := waitSinks(sinks, m); werr != nil {
				return 0, werr
			}
			inFlight = false
		}
		if err != nil {
			return 0, err
		}
		if n > 0 {
			size += int64(n)
			for i, sk := range sinks {
				if sk.lost == nil {
					sk.in <- bufs[cur].shards[i]
				}
			}
			inFlight = true
		}
		if last {
			if inFlight {
				if werr := waitSinks(sinks, m); werr != nil {
					return 0, werr
				}
			}
			return size, nil
		}
	}
}

// sink feeds one shard writer from its own goroutine, so a slow holder
// does not hold up the others within a stripe.
type sink struct {
	index int
	node  string
	w     ShardWriter
	in    chan []byte
	ack   chan error
	// lost: the holder stopped answering during the upload, which goes on
	// without this shard (see waitSinks).
	lost error
}

func startSink(index int, node string, w ShardWriter) *sink {
	sk := &sink{index: index, node: node, w: w, in: make(chan []byte, 1), ack: make(chan error, 1)}
	go func() {
		defer close(sk.ack)
		for p := range sk.in {
			sk.ack <- sk.w.WriteBlock(p)
		}
	}()
	return sk
}

// waitSinks waits for every sink still in the upload to finish its block.
// A holder that stopped answering (refused, reset, stalled) is given up,
// its sink marked lost, while fewer than maxLost are: the blob is stored
// with at least k shards, says so in tolerates, and the repair pass
// rebuilds the missing one. Any other failure, or one loss too many, is
// returned as a ShardError.
func waitSinks(sinks []*sink, maxLost int) error {
	var first error
	for _, sk := range sinks {
		if sk.lost != nil {
			continue
		}
		err := <-sk.ack
		if err == nil {
			continue
		}
		se := &ShardError{Index: sk.index, Node: sk.node, Block: -1, Err: diskError(err)}
		if replaceable(err) && lost(sinks) < maxLost {
			sk.lost = se
			continue
		}
		if first == nil {
			first = se
		}
	}
	return first
}

// lost counts the sinks given up.
func lost(sinks []*sink) int {
	n := 0
	for _, sk := range sinks {
		if sk.lost != nil {
			n++
		}
	}
	return n
}

func stopSink(sk *sink) {
	close(sk.in)
	for range sk.ack {
	}
}

func abortSinks(sinks []*sink) {
	for _, sk := range sinks {
		stopSink(sk)
		sk.w.Abort()
	}
}

// commitSinks commits every shard still in the upload in parallel and
// aborts those given up; a holder that stops answering now is given up
// too, as waitSinks does, while fewer than maxLost are. On any other
// failure the caller removes what was committed.
func commitSinks(sinks []*sink, maxLost int) error {
	errs := make([]error, len(sinks))
	done := make(chan struct{})
	for i, sk := range sinks {
		stopSink(sk)
		go func() {
			if sk.lost != nil {
				sk.w.Abort()
			} else if err := sk.w.Commit(); err != nil {
				errs[i] = err
			}
			done <- struct{}{}
		}()
	}
	for range sinks {
		<-done
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		sk := sinks[i]
		errs[i] = &ShardError{Index: sk.index, Node: sk.node, Block: -1, Err: diskError(err)}
		if replaceable(err) && lost(sinks) < maxLost {
			sk.lost, errs[i] = errs[i], nil
		}
	}
	return errors.Join(errs...)
}

// readFull reads until p is full or r reports io.EOF. Unlike io.ReadFull it
// passes on every other error, io.ErrUnexpectedEOF included (a request body
// cut short says so), so a cut-off upload is never taken for its end.
func readFull(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
