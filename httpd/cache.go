package httpd

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/gin-gonic/gin"
)

// Content types of a stored value.
const (
	// contentTypeText is the type of a value written in the JSON form: the
	// value was a JSON string, so it is UTF-8 text.
	contentTypeText = "text/plain; charset=utf-8"
	// contentTypeDefault answers a value stored without a Content-Type.
	contentTypeDefault = "application/octet-stream"
)

// Listing limits of GET /cache.
const (
	defaultListLimit = 100
	maxListLimit     = 10000
)

// putAnswer is the JSON answer to a PUT.
type putAnswer struct {
	Key       string  `json:"key"`
	Version   string  `json:"version"`
	ExpiresAt *string `json:"expires_at"`
}

// putKey serves PUT /cache/*key in both of its forms.
func (s *Server) putKey(c *gin.Context) error {
	key, err := s.keyOf(c.Param("key"))
	if err != nil {
		return err
	}
	local, err := isSync(c.Request)
	if err != nil {
		return err
	}
	w := cluster.Write{Key: key, Local: local}
	if w.If, err = preconditionOf(c.Request); err != nil {
		return err
	}
	var ttl time.Duration
	if ct := c.Request.Header.Get("Content-Type"); isJSON(ct) {
		body, held, err := s.readBody(c.Request, jsonBodyLimit(s.cfg.MaxValueBytes), "JSON body")
		defer s.budget.give(held)
		if err != nil {
			return err
		}
		if w.Value, ttl, err = parseJSONPut(body, s.cfg.MaxValueBytes); err != nil {
			return err
		}
		if q, ok := c.GetQuery("ttl"); ok {
			if ttl != 0 {
				return badRequest(`an expiry given twice: "duration" in the body and ?ttl=`)
			}
			if ttl, err = parseTTL(q); err != nil {
				return err
			}
		}
		w.ContentType = contentTypeText
	} else {
		if q, ok := c.GetQuery("ttl"); ok {
			if ttl, err = parseTTL(q); err != nil {
				return err
			}
		}
		// The store copies the value during the write (cluster.Write), so
		// the buffer's slack is not kept with it.
		var held int64
		w.Value, held, err = s.readBody(c.Request, s.cfg.MaxValueBytes, "value")
		defer s.budget.give(held)
		if err != nil {
			return err
		}
		w.ContentType = ct
	}
	if w.ExpiresAt, err = expiresAt(s.cfg.Now(), ttl); err != nil {
		return err
	}
	ent, err := s.cache.Put(c.Request.Context(), w)
	if err != nil {
		return err
	}
	ans := putAnswer{Key: ent.Key, Version: formatVersion(ent.Version)}
	if ent.ExpiresAt != 0 {
		t := formatExpiry(ent.ExpiresAt)
		ans.ExpiresAt = &t
	}
	return writeJSON(c, http.StatusOK, ans)
}

// nosniff keeps browsers from guessing another type than the one a value
// was stored with (a text value read as HTML, say). Shared, never changed.
var nosniff = []string{"nosniff"}

// getKey serves GET and HEAD /cache/*key. It is the hot path: no JSON, no
// fmt, and header values set straight into the map.
func (s *Server) getKey(c *gin.Context) error {
	key, err := s.keyOf(c.Param("key"))
	if err != nil {
		return err
	}
	ent, ok := s.cache.Get(key)
	if !ok || ent.Deleted {
		return errKeyNotFound
	}
	etagHeader := newETagHeader(ent.Version)
	etag := etagHeader[0]
	h := c.Writer.Header()
	h["Etag"] = etagHeader
	if ent.ExpiresAt != 0 {
		h["X-Expires-At"] = []string{formatExpiry(ent.ExpiresAt)}
	}
	if done, err := notModified(c, etag); done || err != nil {
		return err
	}
	h["Content-Type"] = s.contentTypes.header(ent.ContentType)
	h["X-Content-Type-Options"] = nosniff
	head := c.Request.Method == http.MethodHead
	if head || len(ent.Value) > autoLengthBytes {
		h["Content-Length"] = []string{strconv.Itoa(len(ent.Value))}
	}
	c.Writer.WriteHeader(http.StatusOK)
	if head {
		c.Writer.WriteHeaderNow()
		return nil
	}
	_, _ = c.Writer.Write(ent.Value) // a failed write is the client gone
	return nil
}

// autoLengthBytes: net/http sets the Content-Length of a body of up to
// this many bytes written at once by a handler that then returns, so only
// longer ones (which would otherwise be chunked) get one set here.
const autoLengthBytes = 2048

// deleteKey serves DELETE /cache/*key: 204 whether or not the key was there.
func (s *Server) deleteKey(c *gin.Context) error {
	key, err := s.keyOf(c.Param("key"))
	if err != nil {
		return err
	}
	local, err := isSync(c.Request)
	if err != nil {
		return err
	}
	cond, err := preconditionOf(c.Request)
	if err != nil {
		return err
	}
	if cond == (cluster.Precondition{}) {
		_, err = s.cache.Delete(c.Request.Context(), key, local)
	} else {
		_, err = s.cache.Put(c.Request.Context(), cluster.Write{Key: key, Local: local, Delete: true, If: cond})
	}
	if err != nil {
		return err
	}
	c.Writer.WriteHeader(http.StatusNoContent)
	c.Writer.WriteHeaderNow()
	return nil
}

// listAnswer is the JSON answer to GET /cache.
type listAnswer struct {
	Keys []string `json:"keys"`
	Next string   `json:"next"`
}

// listKeys serves GET /cache?prefix=&limit=&after=.
func (s *Server) listKeys(c *gin.Context) error {
	limit, err := listLimit(c)
	if err != nil {
		return err
	}
	keys, next := s.listVisible(c.Query("prefix"), c.Query("after"), limit)
	return writeJSON(c, http.StatusOK, listAnswer{Keys: keys, Next: next})
}

// listLimit reads ?limit= of a listing: default 100, at most 10000.
func listLimit(c *gin.Context) (int, error) {
	q, ok := c.GetQuery("limit")
	if !ok {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 {
		return 0, badRequest("limit must be a whole number from 1 to %d, not %q", maxListLimit, q)
	}
	return min(n, maxListLimit), nil
}

// listVisible lists up to limit keys as Cache.List does, leaving out the
// node's internal keys (those starting with a NUL byte, which no client can
// write). Internal keys sort before every other key, so only a listing that
// starts among them has to page past them.
func (s *Server) listVisible(prefix, after string, limit int) ([]string, string) {
	keys := make([]string, 0, min(limit, 1024))
	if strings.HasPrefix(prefix, "\x00") {
		return keys, ""
	}
	for {
		n := limit - len(keys)
		if prefix == "" && after < "\x01" {
			n = max(n, 256) // still among the internal keys, perhaps many
		}
		page, next := s.cache.List(prefix, after, n)
		for _, k := range page {
			// Internal keys, and keys a JSON answer cannot carry unchanged
			// (not UTF-8: refused since, perhaps stored before).
			if strings.HasPrefix(k, "\x00") || !utf8.ValidString(k) {
				continue
			}
			if len(keys) == limit {
				return keys, keys[len(keys)-1]
			}
			keys = append(keys, k)
		}
		switch {
		case next == "":
			return keys, ""
		case len(keys) == limit:
			// Not next, which may be a key skipped above: the listing goes
			// on after the last key it gave.
			return keys, keys[len(keys)-1]
		}
		after = next
	}
}

// writeJSON answers c with v encoded as JSON.
func writeJSON(c *gin.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := c.Writer.Header()
	h["Content-Type"] = []string{contentTypeJSON}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(b) // a failed write is the client gone
	return nil
}

// formatExpiry is an expiry in Unix nanoseconds as RFC 3339 in UTC.
func formatExpiry(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

const hexDigits = "0123456789abcdef"

// putHex writes x as 16 hex digits into b.
func putHex(b []byte, x uint64) {
	_ = b[15]
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[x&0xf]
		x >>= 4
	}
}

// formatVersion is v as engine.Version.String spells it (32 hex digits),
// without fmt.
func formatVersion(v engine.Version) string {
	var b [32]byte
	putHex(b[:16], v.Time)
	putHex(b[16:], v.Node)
	return string(b[:])
}

// etagLen is the length of an ETag: a version in double quotes.
const etagLen = 34

// putQuotedVersion writes the ETag of a version: its string in double
// quotes.
func putQuotedVersion(b *[etagLen]byte, v engine.Version) {
	b[0], b[etagLen-1] = '"', '"'
	putHex(b[1:17], v.Time)
	putHex(b[17:33], v.Node)
}

// etagBox holds an ETag header value and the bytes of its one string, so
// a GET allocates once for its ETag instead of twice.
type etagBox struct {
	value [1]string
	text  [etagLen]byte
}

// newETagHeader returns the ETag header value of a version. The string
// points into the same allocation as the slice; nothing writes to it after
// this function, so it is as immutable as any Go string.
func newETagHeader(v engine.Version) []string {
	box := new(etagBox)
	putQuotedVersion(&box.text, v)
	box.value[0] = unsafe.String(&box.text[0], etagLen)
	return box.value[:]
}

// notModified applies a read's If-Match and If-None-Match to the current
// etag: an If-Match that names neither it nor "*" is errIfMatch (a weak tag
// never matches), an If-None-Match that names it answers 304 (done).
func notModified(c *gin.Context, etag string) (done bool, err error) {
	if im := c.Request.Header["If-Match"]; len(im) > 0 && !strongMatch(im, etag) {
		return false, errIfMatch
	}
	if inm := c.Request.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, etag) {
		c.Writer.WriteHeader(http.StatusNotModified)
		c.Writer.WriteHeaderNow()
		return true, nil
	}
	return false, nil
}

// strongMatch reports whether an If-Match header (possibly several, each a
// comma-separated list) names etag or is "*"; weak tags do not match.
func strongMatch(headers []string, etag string) bool {
	for _, h := range headers {
		for h != "" {
			var tag string
			tag, h, _ = strings.Cut(h, ",")
			if tag = strings.TrimSpace(tag); tag == "*" || tag == etag {
				return true
			}
		}
	}
	return false
}

// etagMatches reports whether an If-None-Match header (possibly several,
// each a comma-separated list, weak tags allowed) names etag or is "*".
func etagMatches(headers []string, etag string) bool {
	for _, h := range headers {
		for h != "" {
			var tag string
			tag, h, _ = strings.Cut(h, ",")
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
