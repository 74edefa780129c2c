package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Entry is a cache key's value and metadata.
type Entry struct {
	Key         string
	Value       []byte // nil from Head
	ContentType string
	// Version is the key's version (its ETag without the quotes); it is
	// what PutOptions.IfMatch takes.
	Version string
	// ExpiresAt is when the key expires; zero when it does not.
	ExpiresAt time.Time
}

// PutOptions are the options of Put. The zero value stores the value with
// no expiry, as application/octet-stream, on every live node.
type PutOptions struct {
	// TTL is how long the value lives; 0 for ever.
	TTL time.Duration
	// ContentType is the value's type, served back by Get (default
	// application/octet-stream). It cannot be application/json, which the
	// node reads as its JSON form ({"value": ..., "duration": ...}).
	ContentType string
	// IfMatch applies the write only when the key's version is this one
	// ("*": when the key exists). IfNoneMatch applies it only when the
	// version is not this one ("*": when the key is absent). A failed
	// condition is ErrPreconditionFailed.
	IfMatch, IfNoneMatch string
	// NodeLocal applies the write on the answering node only (X-Is-Sync).
	NodeLocal bool
}

// PutResult is the node's answer to a Put.
type PutResult struct {
	Key       string     `json:"key"`
	Version   string     `json:"version"`
	ExpiresAt *time.Time `json:"expires_at"` // nil: no expiry
}

// DeleteOptions are the options of Delete; see PutOptions.
type DeleteOptions struct {
	IfMatch, IfNoneMatch string
	NodeLocal            bool
}

// ListPage is one page of a key listing. Next is where the next page
// starts (the after of the next List); empty on the last page.
type ListPage struct {
	Keys []string `json:"keys"`
	Next string   `json:"next"`
}

// Member is a node of the cluster as GET /cluster/members lists it.
type Member struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	GossipPort int    `json:"gossip_port"`
	HTTPAddr   string `json:"http_addr"`
	State      string `json:"state"` // alive, suspect, dead, left
}

// cachePath is the path of a key. The key is escaped whole ('/' too); the
// node decodes it back.
func cachePath(key string) string { return "/cache/" + url.PathEscape(key) }

// Get returns key's value. An absent or expired key is ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) (*Entry, error) {
	return c.getEntry(ctx, http.MethodGet, key)
}

// Head returns key's metadata without its value.
func (c *Client) Head(ctx context.Context, key string) (*Entry, error) {
	return c.getEntry(ctx, http.MethodHead, key)
}

func (c *Client) getEntry(ctx context.Context, method, key string) (*Entry, error) {
	if key == "" {
		return nil, errors.New("client: empty key")
	}
	r := &request{method: method, path: cachePath(key), want: []int{http.StatusOK}}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	e := &Entry{
		Key:         key,
		ContentType: resp.Header.Get("Content-Type"),
		Version:     unquote(resp.Header.Get("Etag")),
	}
	if x := resp.Header.Get("X-Expires-At"); x != "" {
		if e.ExpiresAt, err = time.Parse(time.RFC3339Nano, x); err != nil {
			return nil, fmt.Errorf("%s %s: bad X-Expires-At %q", method, r.path, x)
		}
	}
	if method == http.MethodHead {
		return e, nil
	}
	if e.Value, err = c.readAnswer(resp.Body); err != nil {
		return nil, fmt.Errorf("%s %s: reading the value: %w", method, r.path, err)
	}
	return e, nil
}

// Put stores value under key.
func (c *Client) Put(ctx context.Context, key string, value []byte, opt *PutOptions) (*PutResult, error) {
	if key == "" {
		return nil, errors.New("client: empty key")
	}
	if opt == nil {
		opt = &PutOptions{}
	}
	if opt.TTL < 0 {
		return nil, fmt.Errorf("client: negative TTL %v", opt.TTL)
	}
	if value == nil {
		value = []byte{} // an empty value is a value: send Content-Length 0
	}
	ct := opt.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if isJSONType(ct) {
		return nil, errors.New(`client: a value cannot be stored as application/json: the node reads that type as its JSON form {"value": ...}; use another type (text/plain, application/octet-stream, application/vnd.NAME+json)`)
	}
	r := &request{
		method: http.MethodPut, path: cachePath(key), body: value,
		header: conditionHeader(opt.IfMatch, opt.IfNoneMatch, opt.NodeLocal),
		want:   []int{http.StatusOK},
	}
	r.header.Set("Content-Type", ct)
	r.retryUnsent = opt.IfMatch != "" || opt.IfNoneMatch != ""
	if opt.TTL > 0 {
		r.query = url.Values{"ttl": {opt.TTL.String()}}
	}
	var res PutResult
	if err := c.doJSON(ctx, r, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// isJSONType reports whether the node takes a body of type ct as its JSON
// form.
func isJSONType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// Delete removes key; deleting an absent key succeeds.
func (c *Client) Delete(ctx context.Context, key string, opt *DeleteOptions) error {
	if key == "" {
		return errors.New("client: empty key")
	}
	if opt == nil {
		opt = &DeleteOptions{}
	}
	r := &request{
		method: http.MethodDelete, path: cachePath(key),
		header:      conditionHeader(opt.IfMatch, opt.IfNoneMatch, opt.NodeLocal),
		retryUnsent: opt.IfMatch != "" || opt.IfNoneMatch != "",
		want:        []int{http.StatusNoContent, http.StatusOK},
	}
	_, err := c.doNoBody(ctx, r)
	return err
}

// conditionHeader are the headers of a conditional or node-local write.
func conditionHeader(ifMatch, ifNoneMatch string, local bool) http.Header {
	h := http.Header{}
	if ifMatch != "" {
		h.Set("If-Match", quote(ifMatch))
	}
	if ifNoneMatch != "" {
		h.Set("If-None-Match", quote(ifNoneMatch))
	}
	if local {
		h.Set("X-Is-Sync", "true")
	}
	return h
}

// quote makes an entity tag of a version: "*" and tags already quoted stay.
func quote(v string) string {
	if v == "*" || strings.HasPrefix(v, `"`) || strings.HasPrefix(v, `W/"`) {
		return v
	}
	return `"` + v + `"`
}

func unquote(tag string) string {
	tag = strings.TrimPrefix(tag, "W/")
	if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
		return tag[1 : len(tag)-1]
	}
	return tag
}

// List returns up to limit keys (0: the node's default, 100) that start
// with prefix and sort after after, in byte order.
func (c *Client) List(ctx context.Context, prefix, after string, limit int) (*ListPage, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page ListPage
	r := &request{method: http.MethodGet, path: "/cache", query: q, want: []int{http.StatusOK}}
	if err := c.doJSON(ctx, r, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// listPageSize is the page size of Keys and Blobs.
const listPageSize = 1000

// Keys yields every key that starts with prefix, in byte order, fetching
// pages as it goes. A failed page is yielded as an error and ends it.
func (c *Client) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		after := ""
		for {
			page, err := c.List(ctx, prefix, after, listPageSize)
			if err != nil {
				yield("", err)
				return
			}
			for _, k := range page.Keys {
				if !yield(k, nil) {
					return
				}
			}
			if page.Next == "" || page.Next == after || len(page.Keys) == 0 {
				return
			}
			after = page.Next
		}
	}
}

// Members lists the cluster's members as the node sees them.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var ms []Member
	r := &request{method: http.MethodGet, path: "/cluster/members", want: []int{http.StatusOK}}
	if err := c.doJSON(ctx, r, &ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// readyPoll is the pause between two /readyz requests of Ready.
const readyPoll = 200 * time.Millisecond

// NotReadyError is Ready giving up: ctx ended before the node answered
// /readyz with 200.
type NotReadyError struct {
	Err  error // the context's error
	Last error // the last request's failure, or the node's "not ready" answer
}

func (e *NotReadyError) Error() string {
	if e.Last == nil {
		return "not ready: " + e.Err.Error()
	}
	return fmt.Sprintf("not ready: %v (last: %v)", e.Err, e.Last)
}

func (e *NotReadyError) Unwrap() []error { return []error{e.Err, e.Last} }

// Ready waits until the node answers GET /readyz with 200 (recovered and,
// when it joined a cluster, synced), polling until ctx is done. Each
// request is bounded by the client's timeout.
func (c *Client) Ready(ctx context.Context) error {
	r := &request{method: http.MethodGet, path: "/readyz", want: []int{http.StatusOK}}
	for {
		resp, _, err := c.attempt(ctx, r)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			return nil
		}
		if ctx.Err() != nil {
			return &NotReadyError{Err: context.Cause(ctx), Last: lastOf(err, ctx)}
		}
		if serr := c.sleep(ctx, readyPoll); serr != nil {
			return &NotReadyError{Err: serr, Last: err}
		}
	}
}

// lastOf is the failure of the last /readyz request, unless it only says
// that ctx ended.
func lastOf(err error, ctx context.Context) error {
	if errors.Is(err, context.Cause(ctx)) || errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}
