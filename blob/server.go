package blob

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// ShardPathPrefix is where the HTTP layer mounts the ShardServer.
const ShardPathPrefix = "/internal/shards/"

// ShardServer serves this node's shards to the other nodes' HTTPClient:
//
//	GET    /internal/shards/                        JSON list of ShardInfo
//	GET    /internal/shards/{id}                    this node's Record of blob id (JSON): manifest or deletion; 404 if neither
//	PUT    /internal/shards/{id}                    a new Record of blob id (JSON); 204
//	PUT    /internal/shards/{id}/{gen}/{index}?bs=N  framed blocks, end marker; 201 once committed
//	PUT    /internal/shards/{id}/{gen}/{index}?block=B  one framed block, rewritten in place; 204
//	GET    /internal/shards/{id}/{gen}/{index}?from=A&to=B  framed blocks [A, B) as stored
//	GET    /internal/shards/{id}/{gen}/{index}?stat  ShardInfo of the shard (JSON); 404 if none
//	DELETE /internal/shards/{id}/{gen}/{index}       204, also when absent
//
// {gen} is hexadecimal. Bodies are streamed both ways; a PUT holds one
// block in memory, and memory for a block grows only as its bytes arrive,
// so a header claiming a large block costs nothing until it is sent. A
// shard PUT sent with "Expect: 100-continue" is answered "100 Continue"
// once the shard file is created, which tells the sender that this node
// answers. The record routes exist only on a Store's server
// (Store.ShardHandler).
type ShardServer struct {
	store ShardStore
	node  shardNode // nil on a server of shards only
	log   *slog.Logger
}

// shardNode is what a Store adds to its ShardServer: the records of blobs
// and what its checks found.
type shardNode interface {
	localRecord(id string) (Record, bool, error)
	takeRecord(id string, rec Record) error
	badBlocks(ref ShardRef) int
}

// NewShardServer serves store. A nil logger discards.
func NewShardServer(store ShardStore, log *slog.Logger) *ShardServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ShardServer{store: store, log: log}
}

// maxRecordBytes bounds the body of a record PUT: a manifest of 256 shards
// on nodes with long names is far smaller.
const maxRecordBytes = 1 << 20

// ShardStream reports whether r, a request to the shard routes, streams a
// shard's blocks (a shard PUT, a GET of its blocks), as opposed to their
// small requests (records, the listing, a stat, a delete, the rewrite of
// one block). A node bounds the streams it serves at once.
func ShardStream(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, ShardPathPrefix)
	if !ok || !strings.Contains(rest, "/") {
		return false
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPut:
		return !q.Has("block")
	case http.MethodGet:
		return !q.Has("stat")
	}
	return false
}

func (s *ShardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, ShardPathPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rest == "" {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.list(w)
		return
	}
	if !strings.Contains(rest, "/") {
		s.serveRecord(w, r, rest)
		return
	}
	ref, err := parseRefPath(rest)
	if err != nil {
		s.fail(w, err)
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("block"):
		err = s.rewrite(r, ref, q.Get("block"))
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
		}
	case r.Method == http.MethodPut:
		err = s.put(r, ref, q.Get("bs"))
		if err == nil {
			w.WriteHeader(http.StatusCreated)
		}
	case r.Method == http.MethodGet && q.Has("stat"):
		err = s.stat(w, ref)
	case r.Method == http.MethodGet:
		err = s.get(w, ref, q.Get("from"), q.Get("to"))
	case r.Method == http.MethodDelete:
		err = s.store.Remove(ref)
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		s.fail(w, err)
	}
}

// fail answers err with a status the client maps back to a sentinel.
func (s *ShardServer) fail(w http.ResponseWriter, err error) {
	err = diskError(err)
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoShard):
		status = http.StatusNotFound
	case errors.Is(err, ErrDiskFull):
		status = http.StatusInsufficientStorage
	case errors.Is(err, ErrBadParams), errors.Is(err, ErrBadID), errors.Is(err, ErrCorrupt):
		status = http.StatusBadRequest
	case errors.Is(err, ErrClosed):
		status = http.StatusServiceUnavailable
	default:
		s.log.Warn("shard request failed", slog.Any("err", err))
	}
	http.Error(w, err.Error(), status)
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *ShardServer) list(w http.ResponseWriter) {
	infos, err := s.store.List()
	if err != nil {
		s.fail(w, err)
		return
	}
	if s.node != nil {
		for i := range infos {
			infos[i].Corrupt = s.node.badBlocks(infos[i].Ref)
		}
	}
	writeJSONBody(w, infos)
}

// serveRecord answers the record routes of blob id.
func (s *ShardServer) serveRecord(w http.ResponseWriter, r *http.Request, id string) {
	if s.node == nil {
		http.NotFound(w, r)
		return
	}
	if err := validateID(id); err != nil {
		s.fail(w, err)
		return
	}
	switch r.Method {
	case http.MethodGet:
		rec, ok, err := s.node.localRecord(id)
		switch {
		case err != nil:
			s.fail(w, err)
		case !ok && rec.Version.IsZero():
			s.fail(w, fmt.Errorf("%w: no record of %q", ErrNotFound, id))
		default:
			writeJSONBody(w, rec)
		}
	case http.MethodPut:
		var rec Record
		dec := json.NewDecoder(io.LimitReader(r.Body, maxRecordBytes))
		if err := dec.Decode(&rec); err != nil {
			s.fail(w, fmt.Errorf("%w: record of %q: %v", ErrBadParams, id, err))
			return
		}
		if err := s.node.takeRecord(id, rec); err != nil {
			s.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// stat answers the ShardInfo of one shard.
func (s *ShardServer) stat(w http.ResponseWriter, ref ShardRef) error {
	info, err := s.store.Stat(ref)
	if err != nil {
		return err
	}
	if s.node != nil {
		info.Corrupt = s.node.badBlocks(ref)
	}
	writeJSONBody(w, info)
	return nil
}

// put receives a shard's framed blocks and commits it on the end marker.
func (s *ShardServer) put(r *http.Request, ref ShardRef, bsArg string) error {
	bs, err := strconv.Atoi(bsArg)
	if err != nil || bs < 1 || bs > maxBlockSize {
		return fmt.Errorf("%w: block size %q", ErrBadParams, bsArg)
	}
	sw, err := s.store.Create(ref, bs)
	if err != nil {
		return err
	}
	if err := receiveBlocks(bufio.NewReaderSize(r.Body, 64<<10), sw, bs); err != nil {
		sw.Abort()
		return fmt.Errorf("shard %s/%x/%d: %w", ref.ID, ref.Gen, ref.Index, err)
	}
	return sw.Commit()
}

// receiveBlocks copies verified blocks from r to sw up to the end marker.
func receiveBlocks(r io.Reader, sw ShardWriter, bs int) error {
	var raw []byte
	for n := uint64(0); ; n++ {
		raw = slices.Grow(raw[:0], blockHeaderLen)[:blockHeaderLen]
		if _, err := io.ReadFull(r, raw); err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		h, err := decodeBlockHeader(raw)
		if err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		if h.Length == endMarker {
			if h.Index != n {
				return fmt.Errorf("%w: end marker after %d blocks, received %d", ErrCorrupt, h.Index, n)
			}
			return nil
		}
		if h.Length > uint32(bs) {
			return fmt.Errorf("%w: block %d of %d bytes, block size %d", ErrCorrupt, n, h.Length, bs)
		}
		if raw, err = readMore(r, raw, int(h.Length)); err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		if err := verifyBlock(raw, n, int(h.Length)); err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		if err := sw.WriteBlock(raw[blockHeaderLen:]); err != nil {
			return err
		}
	}
}

// readMore appends exactly n bytes from r to buf. It grows buf as the
// bytes arrive, at most doubling it each time, so a length claimed by a
// header costs memory only once that many bytes are actually sent.
func readMore(r io.Reader, buf []byte, n int) ([]byte, error) {
	want := len(buf) + n
	for len(buf) < want {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(want-len(buf), max(64<<10, cap(buf))))
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), want)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < want {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// rewrite replaces one block with the verified frame in the body. The
// frame is read as it arrives; the shard store checks that its length is
// the block's real one.
func (s *ShardServer) rewrite(r *http.Request, ref ShardRef, blockArg string) error {
	b, err := strconv.Atoi(blockArg)
	if err != nil || b < 0 {
		return fmt.Errorf("%w: block %q", ErrBadParams, blockArg)
	}
	raw := make([]byte, blockHeaderLen)
	if _, err := io.ReadFull(r.Body, raw); err != nil {
		return fmt.Errorf("%w: rewrite body: %v", ErrBadParams, err)
	}
	h, err := decodeBlockHeader(raw)
	if err != nil || h.Length == endMarker {
		return fmt.Errorf("%w: rewrite of block %d: bad header", ErrBadParams, b)
	}
	if raw, err = readMore(r.Body, raw, int(h.Length)); err != nil {
		return fmt.Errorf("%w: rewrite body: %v", ErrBadParams, err)
	}
	if err := verifyBlock(raw, uint64(b), len(raw)-blockHeaderLen); err != nil {
		return err
	}
	return s.store.RewriteBlock(ref, b, raw[blockHeaderLen:])
}

// get streams blocks [from, to) as stored.
func (s *ShardServer) get(w http.ResponseWriter, ref ShardRef, fromArg, toArg string) error {
	from, to := 0, -1
	var err error
	if fromArg != "" {
		if from, err = strconv.Atoi(fromArg); err != nil {
			return fmt.Errorf("%w: from %q", ErrBadParams, fromArg)
		}
	}
	if toArg != "" {
		if to, err = strconv.Atoi(toArg); err != nil {
			return fmt.Errorf("%w: to %q", ErrBadParams, toArg)
		}
	}
	rc, err := s.store.OpenBlocks(ref, from, to)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if sized, ok := rc.(interface{ Size() int64 }); ok {
		// A length spares the reader chunked framing.
		w.Header().Set("Content-Length", strconv.FormatInt(sized.Size(), 10))
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("shard stream cut", slog.String("id", ref.ID), slog.Int("index", ref.Index), slog.Any("err", err))
	}
	return nil
}

// refPath is the path of a shard below ShardPathPrefix.
func refPath(ref ShardRef) string {
	return ref.ID + "/" + strconv.FormatUint(ref.Gen, 16) + "/" + strconv.Itoa(ref.Index)
}

func parseRefPath(p string) (ShardRef, error) {
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return ShardRef{}, fmt.Errorf("%w: shard path %q", ErrBadParams, p)
	}
	if err := validateID(parts[0]); err != nil {
		return ShardRef{}, err
	}
	gen, err := strconv.ParseUint(parts[1], 16, 64)
	if err != nil {
		return ShardRef{}, fmt.Errorf("%w: generation %q", ErrBadParams, parts[1])
	}
	idx, err := strconv.Atoi(parts[2])
	if err != nil || idx < 0 || idx > 255 {
		return ShardRef{}, fmt.Errorf("%w: shard index %q", ErrBadParams, parts[2])
	}
	return ShardRef{ID: parts[0], Gen: gen, Index: idx}, nil
}
