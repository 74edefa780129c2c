package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Manifest describes a stored blob: how it is coded and where its shards
// are.
type Manifest struct {
	ID          string    `json:"id"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex
	Data        int       `json:"data"`   // k
	Parity      int       `json:"parity"` // m
	StripeBytes int64     `json:"stripe_bytes"`
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
	Shards      []Shard   `json:"shards"`
	// Tolerates is how many node losses the blob survives given where its
	// shards went.
	Tolerates int `json:"tolerates"`
	// Health is the blob's state now: only StatBlob reports it.
	Health string `json:"health,omitempty"`
}

// Shard is where shard Index of every stripe lives.
type Shard struct {
	Index  int    `json:"index"`
	Node   string `json:"node"`
	Health string `json:"health,omitempty"` // only from StatBlob
}

// NoParity, as BlobPutOptions.Parity, stores a blob without parity shards.
const NoParity = -1

// BlobPutOptions are the options of PutBlob; the zero value takes the
// node's defaults.
type BlobPutOptions struct {
	// Data is the number of data shards k (0: the node's default).
	Data int
	// Parity is the number of parity shards m (0: the node's default;
	// NoParity: none).
	Parity int
	// ContentType is kept with the blob (default application/octet-stream).
	ContentType string
	// Size is the blob's length when known (sent as Content-Length);
	// 0 means unknown unless the reader tells (a *bytes.Reader,
	// *strings.Reader or *os.File).
	Size int64
}

// blobPath is the path of a blob.
func blobPath(id string) string { return "/blob/" + url.PathEscape(id) }

// PutBlob stores the bytes of r as blob id, streaming them, and returns
// its manifest. A failed attempt is retried when r is an io.Seeker (it is
// rewound to where it was) or when the attempt read none of it.
func (c *Client) PutBlob(ctx context.Context, id string, r io.Reader, opt *BlobPutOptions) (*Manifest, error) {
	if id == "" {
		return nil, errors.New("client: empty blob id")
	}
	if opt == nil {
		opt = &BlobPutOptions{}
	}
	q := url.Values{}
	if opt.Data < 0 {
		return nil, fmt.Errorf("client: data shards %d: want at least 1", opt.Data)
	}
	if opt.Data > 0 {
		q.Set("data", strconv.Itoa(opt.Data))
	}
	switch {
	case opt.Parity == NoParity:
		q.Set("parity", "0")
	case opt.Parity > 0:
		q.Set("parity", strconv.Itoa(opt.Parity))
	case opt.Parity < 0:
		return nil, fmt.Errorf("client: parity shards %d: want 0 or more (NoParity for none)", opt.Parity)
	}
	ct := opt.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	size := opt.Size
	if size <= 0 {
		size = sizeOf(r)
	}
	req := &request{
		method: http.MethodPut, path: blobPath(id), query: q,
		header: http.Header{"Content-Type": {ct}},
		stream: r, size: size,
		want: []int{http.StatusCreated, http.StatusOK},
	}
	var m Manifest
	if err := c.doJSON(ctx, req, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// sizeOf is the number of bytes left in r when r can tell, else -1.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }: // *bytes.Reader, *strings.Reader, *bytes.Buffer
		return int64(v.Len())
	case statSeeker: // *os.File
		st, err := v.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return -1
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return st.Size() - pos
	}
	return -1
}

// statSeeker is a file whose size can be known.
type statSeeker interface {
	Stat() (os.FileInfo, error)
	io.Seeker
}

// StatBlob returns id's manifest with the health of each shard now.
func (c *Client) StatBlob(ctx context.Context, id string) (*Manifest, error) {
	if id == "" {
		return nil, errors.New("client: empty blob id")
	}
	var m Manifest
	r := &request{method: http.MethodGet, path: blobPath(id) + "/manifest", want: []int{http.StatusOK}}
	if err := c.doJSON(ctx, r, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// DeleteBlob removes blob id; deleting an absent blob succeeds.
func (c *Client) DeleteBlob(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("client: empty blob id")
	}
	r := &request{method: http.MethodDelete, path: blobPath(id), want: []int{http.StatusNoContent, http.StatusOK}}
	_, err := c.doNoBody(ctx, r)
	return err
}

// BlobPage is one page of a blob listing; Next as in ListPage.
type BlobPage struct {
	Blobs []Manifest `json:"blobs"`
	Next  string     `json:"next"`
}

// ListBlobs returns the manifests of up to limit blobs (0: the node's
// default, 100) whose ids start with prefix and sort after after, in byte
// order. A page may hold fewer than limit blobs and still have a Next.
func (c *Client) ListBlobs(ctx context.Context, prefix, after string, limit int) (*BlobPage, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
		// Ids sort in byte order: start the listing just before the first
		// id that can have the prefix.
		if start := beforePrefix(prefix); after < start {
			after = start
		}
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page BlobPage
	r := &request{method: http.MethodGet, path: "/blob", query: q, want: []int{http.StatusOK}}
	if err := c.doJSON(ctx, r, &page); err != nil {
		return nil, err
	}
	if prefix == "" {
		return &page, nil
	}
	// A node that does not filter by prefix lists every id: keep those
	// with the prefix, and stop at the first one past them.
	kept := page.Blobs[:0]
	for _, m := range page.Blobs {
		switch {
		case strings.HasPrefix(m.ID, prefix):
			kept = append(kept, m)
		case m.ID > prefix:
			page.Blobs, page.Next = kept, ""
			return &page, nil
		}
	}
	page.Blobs = kept
	return &page, nil
}

// beforePrefix is a string that sorts after every id below prefix and
// before every id with it: prefix without its last byte, that byte less
// one, then 0xff (no id holds that byte). "" for a prefix that cannot be
// preceded so.
func beforePrefix(prefix string) string {
	last := prefix[len(prefix)-1]
	if last == 0 {
		return ""
	}
	return prefix[:len(prefix)-1] + string([]byte{last - 1, 0xff})
}

// Blobs yields the manifest of every blob whose id starts with prefix, in
// id order, fetching pages as it goes. A failed page is yielded as an
// error and ends it.
func (c *Client) Blobs(ctx context.Context, prefix string) iter.Seq2[*Manifest, error] {
	return func(yield func(*Manifest, error) bool) {
		after := ""
		for {
			page, err := c.ListBlobs(ctx, prefix, after, listPageSize)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range page.Blobs {
				if !yield(&page.Blobs[i], nil) {
					return
				}
			}
			if page.Next == "" || page.Next == after {
				return
			}
			after = page.Next
		}
	}
}

// BlobReader streams a blob. Its errors name the byte offset where the read
// failed; the caller knows the blob. When the connection breaks or stalls, it
// asks again for the rest (Range: bytes=N-) and goes on, as long as the
// node still has the same blob (the same sha256 ETag): a blob replaced in
// between is ErrBlobChanged, never spliced. Up to the client's retries
// failures in a row are resumed; a resumed answer that delivers bytes
// resets the count. At the end, the bytes read are checked against the
// sha256 (ErrChecksum).
type BlobReader struct {
	// Size is the blob's length, ContentType its type, SHA256 its hex
	// sha256 (from the ETag; empty when the node sent none).
	Size        int64
	ContentType string
	SHA256      string

	c        *Client
	ctx      context.Context
	id       string
	etag     string
	body     io.ReadCloser // nil between attempts
	off      int64         // bytes delivered
	sum      hash.Hash
	failures int   // failed attempts in a row
	err      error // sticky
}

// GetBlob opens blob id for reading. The caller must Close the reader.
// Errors before the first byte (ErrNotFound, ErrUnavailable, ...) come from
// GetBlob itself, after the client's retries.
func (c *Client) GetBlob(ctx context.Context, id string) (*BlobReader, error) {
	if id == "" {
		return nil, errors.New("client: empty blob id")
	}
	r := &request{method: http.MethodGet, path: blobPath(id), want: []int{http.StatusOK}}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	br := &BlobReader{
		Size:        resp.ContentLength,
		ContentType: resp.Header.Get("Content-Type"),
		c:           c,
		ctx:         ctx,
		id:          id,
		etag:        resp.Header.Get("Etag"),
		body:        resp.Body,
		sum:         sha256.New(),
	}
	if sha := unquote(br.etag); len(sha) == sha256.Size*2 {
		br.SHA256 = sha
	}
	return br, nil
}

// Offset is how many bytes the reader has delivered.
func (b *BlobReader) Offset() int64 { return b.off }

// Read reads the next bytes of the blob.
func (b *BlobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		if b.body == nil {
			if err := b.resume(); err != nil {
				b.err = err
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		if n > 0 {
			b.off += int64(n)
			b.sum.Write(p[:n])
		}
		if err == io.EOF && b.Size >= 0 && b.off < b.Size {
			err = io.ErrUnexpectedEOF
		}
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF:
			b.err = b.verify()
			return n, b.err
		case b.ctx.Err() != nil:
			b.err = err
			return n, err
		}
		b.body.Close()
		b.body = nil
		if n > 0 {
			b.failures = 0
		}
		b.failures++
		if b.failures > b.c.retries {
			b.err = fmt.Errorf("reading at byte %d: %w", b.off, err)
			return n, b.err
		}
		if n > 0 {
			return n, nil // resume on the next Read
		}
	}
}

// verify checks the bytes read against the blob's sha256.
func (b *BlobReader) verify() error {
	if b.SHA256 == "" || hex.EncodeToString(b.sum.Sum(nil)) == b.SHA256 {
		return io.EOF
	}
	return fmt.Errorf("%w: got sha256 %x, want %s", ErrChecksum, b.sum.Sum(nil), b.SHA256)
}

// resume asks for the blob's bytes from the offset reached, after a
// backoff, and checks that they belong to the same blob.
func (b *BlobReader) resume() error {
	if err := b.c.sleep(b.ctx, b.c.backoff(b.failures-1)); err != nil {
		return err
	}
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-", b.off)}}
	if b.etag != "" {
		h.Set("If-Match", b.etag)
	}
	r := &request{method: http.MethodGet, path: blobPath(b.id), header: h,
		want: []int{http.StatusPartialContent, http.StatusOK}}
	for {
		resp, _, err := b.c.attempt(b.ctx, r)
		if err == nil {
			return b.take(resp)
		}
		var e *Error
		if errors.As(err, &e) {
			switch e.Status {
			case http.StatusNotFound, http.StatusPreconditionFailed, http.StatusRequestedRangeNotSatisfiable:
				return fmt.Errorf("resuming at byte %d: %w: %w", b.off, ErrBlobChanged, err)
			}
		}
		wait, ok := b.c.retryable(r, err, false)
		b.failures++
		if !ok || b.failures > b.c.retries || b.ctx.Err() != nil {
			return fmt.Errorf("resuming at byte %d: %w", b.off, err)
		}
		if err := b.c.sleep(b.ctx, max(wait, b.c.backoff(b.failures-1))); err != nil {
			return err
		}
	}
}

// take checks a resumed answer and makes its body the reader's.
func (b *BlobReader) take(resp *http.Response) error {
	if got := resp.Header.Get("Etag"); got != b.etag {
		resp.Body.Close()
		return fmt.Errorf("resuming at byte %d: %w (ETag %s, was %s)", b.off, ErrBlobChanged, got, b.etag)
	}
	body := resp.Body
	if resp.StatusCode == http.StatusOK {
		// The node ignored the range: skip what was delivered already.
		if _, err := io.CopyN(io.Discard, body, b.off); err != nil {
			body.Close()
			return fmt.Errorf("resuming at byte %d: %w", b.off, err)
		}
	} else if start, total, ok := contentRange(resp.Header.Get("Content-Range")); !ok || start != b.off || (b.Size >= 0 && total != b.Size) {
		body.Close()
		return fmt.Errorf("resuming at byte %d: %w (Content-Range %q)", b.off, ErrBlobChanged, resp.Header.Get("Content-Range"))
	}
	b.body = body
	return nil
}

// contentRange reads "bytes a-b/size".
func contentRange(h string) (start, total int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, size, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	start, err1 = strconv.ParseInt(first, 10, 64)
	total, err2 = strconv.ParseInt(size, 10, 64)
	return start, total, err1 == nil && err2 == nil
}

// Close ends the download.
func (b *BlobReader) Close() error {
	if b.err == nil {
		b.err = errors.New("client: read of a closed blob reader")
	}
	if b.body != nil {
		err := b.body.Close()
		b.body = nil
		return err
	}
	return nil
}
