package blob

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// ShardPathPrefix is where the HTTP layer mounts the ShardServer.
const ShardPathPrefix = "/internal/shards/"

// ShardServer serves this node's shards to the other nodes' HTTPClient:
//
//	GET    /internal/shards/                        JSON list of ShardInfo
//	PUT    /internal/shards/{id}/{gen}/{index}?bs=N  framed blocks, end marker; 201 once committed
//	PUT    /internal/shards/{id}/{gen}/{index}?block=B  one framed block, rewritten in place; 204
//	GET    /internal/shards/{id}/{gen}/{index}?from=A&to=B  framed blocks [A, B) as stored
//	DELETE /internal/shards/{id}/{gen}/{index}       204, also when absent
//
// {gen} is hexadecimal. Bodies are streamed both ways; a PUT holds one
// block in memory.
type ShardServer struct {
	store ShardStore
	log   *slog.Logger
}

// NewShardServer serves store. A nil logger discards.
func NewShardServer(store ShardStore, log *slog.Logger) *ShardServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ShardServer{store: store, log: log}
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
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrBadParams), errors.Is(err, ErrBadID), errors.Is(err, ErrCorrupt):
		status = http.StatusBadRequest
	default:
		s.log.Warn("shard request failed", slog.Any("err", err))
	}
	http.Error(w, err.Error(), status)
}

func (s *ShardServer) list(w http.ResponseWriter) {
	infos, err := s.store.List()
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(infos)
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
	raw := make([]byte, blockHeaderLen+bs)
	for n := uint64(0); ; n++ {
		if _, err := io.ReadFull(r, raw[:blockHeaderLen]); err != nil {
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
		if _, err := io.ReadFull(r, raw[blockHeaderLen:blockHeaderLen+int(h.Length)]); err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		if err := verifyBlock(raw, n, int(h.Length)); err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		if err := sw.WriteBlock(raw[blockHeaderLen : blockHeaderLen+int(h.Length)]); err != nil {
			return err
		}
	}
}

// rewrite replaces one block with the verified frame in the body.
func (s *ShardServer) rewrite(r *http.Request, ref ShardRef, blockArg string) error {
	b, err := strconv.Atoi(blockArg)
	if err != nil || b < 0 {
		return fmt.Errorf("%w: block %q", ErrBadParams, blockArg)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, blockHeaderLen+maxBlockSize))
	if err != nil {
		return err
	}
	if len(raw) < blockHeaderLen {
		return fmt.Errorf("%w: rewrite body of %d bytes", ErrBadParams, len(raw))
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
