package httpd

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/disperse/disperse/blob"
	"github.com/gin-gonic/gin"
)

// Blobs is what the /blob routes need from the node. *blob.Store
// implements it.
type Blobs interface {
	// Put stores the bytes of r as blob id and returns its manifest.
	Put(ctx context.Context, id string, r io.Reader, opt blob.PutOptions) (blob.Manifest, error)
	// Lookup returns the manifest of id as the node knows it, asking the
	// likely holders when it knows none (read-after-write on every node).
	Lookup(ctx context.Context, id string) (blob.Manifest, error)
	// Manifest returns the manifest of id with its health now, as the
	// shards' holders report it.
	Manifest(ctx context.Context, id string) (blob.Manifest, error)
	// ReadManifest streams length bytes from offset (length < 0: to the
	// end) of the blob m describes; it fails before the first byte when
	// fewer than k shards of a needed stripe can be had.
	ReadManifest(ctx context.Context, m blob.Manifest, offset, length int64) (io.ReadCloser, error)
	// DeleteIf removes blob id when cond holds (blob.ErrNotFound when
	// there is none, blob.ErrPrecondition when cond fails).
	DeleteIf(ctx context.Context, id string, cond blob.Condition) error
	// List returns up to limit manifests after after, and where to go on.
	List(after string, limit int) ([]blob.Manifest, string)
	// ShardHandler serves the internal shard transfer between nodes.
	ShardHandler() http.Handler
}

// blobRoutes mounts the /blob routes and the internal shard route.
func (s *Server) blobRoutes(r gin.IRouter) {
	r.GET("/blob", s.wrap(s.listBlobs))
	r.GET("/blob/*path", s.wrap(s.transfer(s.getBlobOrManifest)))
	r.HEAD("/blob/*path", s.wrap(s.getBlob))
	r.PUT("/blob/*path", s.wrap(s.transfer(s.putBlob)))
	r.DELETE("/blob/*path", s.wrap(s.deleteBlob))
	shards := gin.WrapH(s.cfg.Blobs.ShardHandler())
	r.Any(blob.ShardPathPrefix+"*path", func(c *gin.Context) {
		if blob.ShardStream(c.Request) {
			if !s.takeTransfer(c) {
				return
			}
			defer s.releaseTransfer()
		}
		shards(c)
	})
}

// transfer runs h, a blob upload or download, within a transfer slot (see
// Config.MaxBlobTransfers); a manifest read takes none.
func (s *Server) transfer(h handlerFunc) handlerFunc {
	return func(c *gin.Context) error {
		if _, manifest := blobPath(c.Param("path")); manifest {
			return h(c)
		}
		if !s.takeTransfer(c) {
			return nil // answered
		}
		defer s.releaseTransfer()
		return h(c)
	}
}

// takeTransfer takes a transfer slot, or answers 503 with Retry-After when
// none is free and reports false.
func (s *Server) takeTransfer(c *gin.Context) bool {
	if s.transfers == nil {
		return true
	}
	select {
	case s.transfers <- struct{}{}:
		return true
	default:
		s.metrics.rejectedTransfers.Inc()
		c.Writer.Header()["Retry-After"] = []string{"1"}
		s.writeErrorBody(c, http.StatusServiceUnavailable, s.bodies.tooManyTransfers)
		return false
	}
}

func (s *Server) releaseTransfer() {
	if s.transfers != nil {
		<-s.transfers
	}
}

// blobError gives the blob store's errors the answer API.md asks for;
// anything else goes on to statusOf unchanged. The order matters: a read
// that fails for want of shards also wraps the holders' "no such shard",
// and is 503, not 404; a full disk anywhere in a PUT is 507.
func blobError(err error) error {
	var status int
	var code, msg string
	switch {
	case errors.Is(err, blob.ErrBadID), errors.Is(err, blob.ErrBadParams):
		status, code, msg = http.StatusBadRequest, CodeBadRequest, err.Error()
	case errors.Is(err, blob.ErrBodyRead):
		status, code, msg = http.StatusBadRequest, CodeBadRequest, "reading the request body failed; nothing was stored"
	case errors.Is(err, blob.ErrDiskFull):
		status, code, msg = http.StatusInsufficientStorage, CodeDiskFull, "a node's disk is full; nothing was stored"
	case errors.Is(err, blob.ErrUnavailable), errors.Is(err, blob.ErrTooFewNodes):
		status, code, msg = http.StatusServiceUnavailable, CodeUnavailable, "not enough shards or nodes can be reached"
	case errors.Is(err, blob.ErrConflict), errors.Is(err, blob.ErrStale):
		status, code, msg = http.StatusServiceUnavailable, CodeUnavailable, "the blob kept changing while it was written or read; try again"
	case errors.Is(err, blob.ErrPrecondition):
		status, code, msg = http.StatusPreconditionFailed, CodePrecondition, "the blob does not meet If-Match or If-None-Match; nothing changed"
	case errors.Is(err, blob.ErrNotFound):
		status, code, msg = http.StatusNotFound, CodeNotFound, "blob not found"
	default:
		return err
	}
	return &Error{Status: status, Code: code, Msg: strings.TrimPrefix(msg, "blob: "), Err: err}
}

// blobFail maps err with blobError and, for a 503, tells the client when
// to try again: a holder that is restarting, or a blob being rewritten,
// is usually back within seconds.
func blobFail(c *gin.Context, err error) error {
	err = blobError(err)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
		c.Writer.Header().Set("Retry-After", "2")
	}
	return err
}

// blobPath splits the rest of a /blob/*path request into the blob id and
// whether it asks for the manifest (/blob/{id}/manifest).
func blobPath(param string) (id string, manifest bool) {
	p := strings.TrimPrefix(param, "/")
	if id, ok := strings.CutSuffix(p, "/manifest"); ok && id != "" && !strings.Contains(id, "/") {
		return id, true
	}
	return p, false
}

// putBlob serves PUT /blob/{id}?data=k&parity=m: 201 with the manifest.
func (s *Server) putBlob(c *gin.Context) error {
	id, manifest := blobPath(c.Param("path"))
	if manifest {
		return badRequest("the manifest of a blob cannot be written")
	}
	opt := blob.PutOptions{ContentType: c.Request.Header.Get("Content-Type")}
	var err error
	if q, ok := c.GetQuery("data"); ok {
		if opt.Data, err = strconv.Atoi(q); err != nil || opt.Data < 1 {
			return badRequest("data must be a whole number of at least 1, not %q", q)
		}
	}
	if q, ok := c.GetQuery("parity"); ok {
		if opt.Parity, err = strconv.Atoi(q); err != nil || opt.Parity < 0 {
			return badRequest("parity must be a whole number of at least 0, not %q", q)
		}
		if opt.Parity == 0 {
			opt.Parity = blob.NoParity
		}
	}
	if opt.If, err = blobCondition(c.Request.Header); err != nil {
		return err
	}
	body := c.Request.Body
	if body == nil {
		body = http.NoBody
	}
	m, err := s.cfg.Blobs.Put(c.Request.Context(), id, body, opt)
	if err != nil {
		return blobFail(c, err)
	}
	c.Writer.Header().Set("Etag", `"`+m.SHA256+`"`)
	return writeJSON(c, http.StatusCreated, m)
}

// getBlobOrManifest serves GET /blob/{id} and GET /blob/{id}/manifest.
func (s *Server) getBlobOrManifest(c *gin.Context) error {
	if id, manifest := blobPath(c.Param("path")); manifest {
		m, err := s.cfg.Blobs.Manifest(c.Request.Context(), id)
		if err != nil {
			return blobFail(c, err)
		}
		return writeJSON(c, http.StatusOK, m)
	}
	return s.getBlob(c)
}

// getBlob serves GET and HEAD /blob/{id}: 200, or 206 for a satisfiable
// single Range, 416 for an unsatisfiable one. A GET answers 503 before the
// status line when fewer than k shards can be had; a failure after it
// (a holder lost mid-stream, a sha256 mismatch) cuts the connection.
func (s *Server) getBlob(c *gin.Context) error {
	err := s.getBlobOnce(c)
	if errors.Is(err, blob.ErrStale) { // replaced since this node heard: once more, the new one
		err = s.getBlobOnce(c)
	}
	return err
}

func (s *Server) getBlobOnce(c *gin.Context) error {
	id, _ := blobPath(c.Param("path"))
	m, err := s.cfg.Blobs.Lookup(c.Request.Context(), id)
	if err != nil {
		return blobFail(c, err)
	}
	etag := `"` + m.SHA256 + `"`
	h := c.Writer.Header()
	h.Set("Etag", etag)
	h.Set("Accept-Ranges", "bytes")
	if done, err := notModified(c, etag); done || err != nil {
		return err
	}
	off, n, partial, err := parseRange(c.Request.Header.Get("Range"), m.Size)
	if err != nil {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(m.Size, 10))
		return err
	}
	head := c.Request.Method == http.MethodHead
	var rc io.ReadCloser
	if !head {
		if rc, err = s.cfg.Blobs.ReadManifest(c.Request.Context(), m, off, n); err != nil {
			if errors.Is(err, blob.ErrStale) {
				return err
			}
			return blobFail(c, err)
		}
		defer rc.Close()
	}
	ct := m.ContentType
	if ct == "" {
		ct = contentTypeDefault
	}
	h.Set("Content-Type", ct)
	h["X-Content-Type-Options"] = nosniff
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, m.Size))
	}
	c.Writer.WriteHeader(status)
	c.Writer.WriteHeaderNow()
	if head {
		return nil
	}
	if _, err := io.Copy(c.Writer, rc); err != nil && c.Request.Context().Err() == nil {
		// The status is sent: cut the connection so the client sees a short
		// body, never a complete-looking wrong one.
		s.log.Warn("blob read failed mid-answer", "id", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// blobCondition reads If-Match and If-None-Match of a blob PUT or DELETE:
// "*" or one entity tag as GET gives it in ETag, the quoted sha256
// (If-None-Match also takes it weak). Several tags, or one of another
// form, are 400.
func blobCondition(h http.Header) (blob.Condition, error) {
	var c blob.Condition
	var err error
	if c.IfMatch, err = blobTag(h, "If-Match", false); err != nil {
		return c, err
	}
	c.IfNoneMatch, err = blobTag(h, "If-None-Match", true)
	return c, err
}

// blobTag reads header name as "*" or one quoted sha256, given back
// without quotes; "" when the header is absent.
func blobTag(h http.Header, name string, weakOK bool) (string, error) {
	vals := h.Values(name)
	if len(vals) == 0 {
		return "", nil
	}
	tag := strings.TrimSpace(strings.Join(vals, ","))
	if tag == "*" {
		return tag, nil
	}
	if weakOK {
		tag = strings.TrimPrefix(tag, "W/")
	}
	const n = 2 + sha256.Size*2
	if len(tag) != n || tag[0] != '"' || tag[n-1] != '"' || !isLowerHex(tag[1:n-1]) {
		return "", badRequest("%s must be * or one entity tag as a blob's ETag gives it, not %.80q", name, tag)
	}
	return tag[1 : n-1], nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// errRangeNotSatisfiable answers a Range that misses the blob.
var errRangeNotSatisfiable = &Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: CodeRangeNotSatisfiable,
	Msg: "the range does not overlap the blob"}

// parseRange reads a Range header against a blob of size bytes: the offset
// and length to send and whether it is a partial answer. A header that is
// absent, malformed or asks for several ranges is ignored (the whole blob,
// as RFC 9110 allows); a well-formed single range that misses the blob is
// errRangeNotSatisfiable.
func parseRange(header string, size int64) (off, n int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // suffix: the last N bytes
		k, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || k < 0 {
			return 0, size, false, nil
		}
		if k == 0 || size == 0 {
			return 0, 0, false, errRangeNotSatisfiable
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	a, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || a < 0 {
		return 0, size, false, nil
	}
	b := size - 1
	if last != "" {
		if b, perr = strconv.ParseInt(last, 10, 64); perr != nil || b < a {
			return 0, size, false, nil
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, errRangeNotSatisfiable
	}
	return a, b - a + 1, true, nil
}

// deleteBlob serves DELETE /blob/{id}: 204, also when there was none.
func (s *Server) deleteBlob(c *gin.Context) error {
	id, manifest := blobPath(c.Param("path"))
	if manifest {
		return badRequest("delete the blob, not its manifest")
	}
	cond, err := blobCondition(c.Request.Header)
	if err != nil {
		return err
	}
	if err := s.cfg.Blobs.DeleteIf(c.Request.Context(), id, cond); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return blobFail(c, err)
	}
	c.Writer.WriteHeader(http.StatusNoContent)
	c.Writer.WriteHeaderNow()
	return nil
}

// blobList is the JSON answer to GET /blob.
type blobList struct {
	Blobs []blob.Manifest `json:"blobs"`
	Next  string          `json:"next"`
}

// listBlobs serves GET /blob?after=&limit=, paginated like /cache.
func (s *Server) listBlobs(c *gin.Context) error {
	limit, err := listLimit(c)
	if err != nil {
		return err
	}
	ms, next := s.cfg.Blobs.List(c.Query("after"), limit)
	if ms == nil {
		ms = []blob.Manifest{}
	}
	return writeJSON(c, http.StatusOK, blobList{Blobs: ms, Next: next})
}
