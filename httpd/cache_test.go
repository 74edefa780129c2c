package httpd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
)

// putResult decodes a 200 answer to PUT.
type putResult struct {
	Key       string  `json:"key"`
	Version   string  `json:"version"`
	ExpiresAt *string `json:"expires_at"`
}

func decodePut(t testing.TB, body []byte) putResult {
	t.Helper()
	var p putResult
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("PUT answer %q: %v", body, err)
	}
	return p
}

func wantStatus(t testing.TB, got, want int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d (body %q)", got, want, body)
	}
}

func TestPutJSONRoundTrip(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	h := s.Handler()
	rec := do(t, h, http.MethodPut, "/cache/greeting", strings.NewReader(`{"value": "h\u00e9llo \"you\"", "duration": "90s", "extra": [1]}`),
		"Content-Type", "application/json; charset=utf-8")
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	p := decodePut(t, rec.Body.Bytes())
	wantExp := testNow.Add(90 * time.Second).Format(time.RFC3339Nano)
	if p.Key != "greeting" || len(p.Version) != 32 || p.ExpiresAt == nil || *p.ExpiresAt != wantExp {
		t.Fatalf("answer %+v, want key greeting, a 32-digit version, expires_at %s", p, wantExp)
	}
	if w := fc.lastWrite(t); w.Local || w.ExpiresAt != testNow.Add(90*time.Second).UnixNano() {
		t.Fatalf("write %+v: want replicated with expiry now+90s", w)
	}

	rec = do(t, h, http.MethodGet, "/cache/greeting", nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if got := rec.Body.String(); got != `héllo "you"` {
		t.Fatalf("GET body %q", got)
	}
	if ct := rec.Header().Get("Content-Type"); ct != contentTypeText {
		t.Fatalf("Content-Type %q, want %q", ct, contentTypeText)
	}
	if et := rec.Header().Get("ETag"); et != `"`+p.Version+`"` {
		t.Fatalf("ETag %q, want the quoted version %q", et, p.Version)
	}
	if x := rec.Header().Get("X-Expires-At"); x != wantExp {
		t.Fatalf("X-Expires-At %q, want %q", x, wantExp)
	}
}

func TestPutRawRoundTrip(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	h := s.Handler()
	value := []byte{0, 1, 2, 0xff, 0xfe, '\n', '{', '"'}
	rec := do(t, h, http.MethodPut, "/cache/img/logo.png", bytes.NewReader(value), "Content-Type", "image/png")
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if p := decodePut(t, rec.Body.Bytes()); p.Key != "img/logo.png" || p.ExpiresAt != nil {
		t.Fatalf("answer %+v, want key img/logo.png and expires_at null", p)
	}
	if !strings.Contains(rec.Body.String(), `"expires_at":null`) {
		t.Fatalf("answer %s: want an explicit null expires_at", rec.Body)
	}
	if w := fc.lastWrite(t); w.ExpiresAt != 0 || w.ContentType != "image/png" {
		t.Fatalf("write %+v: want no expiry and image/png", w)
	}
	rec = do(t, h, http.MethodGet, "/cache/img/logo.png", nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if !bytes.Equal(rec.Body.Bytes(), value) {
		t.Fatalf("GET body %v, want %v", rec.Body.Bytes(), value)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "image/png" {
		t.Fatalf("Content-Type %q, want image/png", ct)
	}
	if rec.Header().Get("X-Expires-At") != "" {
		t.Fatalf("X-Expires-At %q on a key that never expires", rec.Header().Get("X-Expires-At"))
	}

	// A raw JSON-looking body with another type is stored as is; ?ttl= sets the expiry.
	rec = do(t, h, http.MethodPut, "/cache/doc?ttl=1500ms", strings.NewReader(`{"value":"x"}`), "Content-Type", "text/plain")
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if w := fc.lastWrite(t); string(w.Value) != `{"value":"x"}` || w.ExpiresAt != testNow.Add(1500*time.Millisecond).UnixNano() {
		t.Fatalf("write %+v: want the raw body and expiry now+1.5s", w)
	}
	// No Content-Type: stored without one, served as octet-stream.
	req := do(t, h, http.MethodPut, "/cache/bare", strings.NewReader("abc"))
	wantStatus(t, req.Code, http.StatusOK, req.Body.Bytes())
	rec = do(t, h, http.MethodGet, "/cache/bare", nil)
	if rec.Body.String() != "abc" || rec.Header().Get("Content-Type") != contentTypeDefault {
		t.Fatalf("GET bare: %q %q", rec.Body, rec.Header().Get("Content-Type"))
	}
}

func TestKeyDecoding(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	h := s.Handler()
	rec := do(t, h, http.MethodPut, "/cache/a%2Fb/c%20d%3F%25", strings.NewReader("v"))
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if w := fc.lastWrite(t); w.Key != "a/b/c d?%" {
		t.Fatalf("key %q, want %q", w.Key, "a/b/c d?%")
	}
	rec = do(t, h, http.MethodGet, "/cache/a/b/c%20d%3F%25", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != "v" {
		t.Fatalf("GET: %d %q", rec.Code, rec.Body)
	}
	long := strings.Repeat("k", DefaultMaxKeyBytes)
	rec = do(t, h, http.MethodPut, "/cache/"+long, strings.NewReader("v"))
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
}

func TestDurationForms(t *testing.T) {
	cases := []struct {
		duration string // JSON text of "duration"; "" leaves it out
		want     time.Duration
	}{
		{"", 0},
		{"null", 0},
		{"0", 0},
		{`"0"`, 0},
		{`"0s"`, 0},
		{`"9000000000000"`, 9000 * time.Second},
		{"9000000000000", 9000 * time.Second},
		{`"1h30m"`, 90 * time.Minute},
		{`"1.5s"`, 1500 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.duration, func(t *testing.T) {
			s, fc, _ := newFakeServer(t, nil)
			body := `{"value":"v"}`
			if c.duration != "" {
				body = `{"value":"v","duration":` + c.duration + `}`
			}
			rec := do(t, s.Handler(), http.MethodPut, "/cache/k", strings.NewReader(body), "Content-Type", "application/json")
			wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
			want := int64(0)
			if c.want != 0 {
				want = testNow.Add(c.want).UnixNano()
			}
			if w := fc.lastWrite(t); w.ExpiresAt != want {
				t.Fatalf("ExpiresAt %d, want %d", w.ExpiresAt, want)
			}
		})
	}
}

func TestETagNotModified(t *testing.T) {
	s, _, _ := newFakeServer(t, nil)
	h := s.Handler()
	do(t, h, http.MethodPut, "/cache/k?ttl=1h", strings.NewReader("value"))
	rec := do(t, h, http.MethodGet, "/cache/k", nil)
	etag := rec.Header().Get("ETag")
	if len(etag) != 34 || etag[0] != '"' || etag[33] != '"' {
		t.Fatalf("ETag %q is not a quoted version", etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		rec = do(t, h, http.MethodGet, "/cache/k", nil, "If-None-Match", inm)
		wantStatus(t, rec.Code, http.StatusNotModified, rec.Body.Bytes())
		if rec.Body.Len() != 0 || rec.Header().Get("ETag") != etag || rec.Header().Get("X-Expires-At") == "" {
			t.Fatalf("If-None-Match %s: 304 with body %q, headers %v", inm, rec.Body, rec.Header())
		}
	}
	rec = do(t, h, http.MethodGet, "/cache/k", nil, "If-None-Match", `"0000"`)
	if rec.Code != http.StatusOK || rec.Body.String() != "value" {
		t.Fatalf("stale If-None-Match: %d %q, want 200 with the value", rec.Code, rec.Body)
	}
	// A new write changes the ETag, so the old one no longer matches.
	do(t, h, http.MethodPut, "/cache/k", strings.NewReader("value2"))
	rec = do(t, h, http.MethodGet, "/cache/k", nil, "If-None-Match", etag)
	if rec.Code != http.StatusOK || rec.Body.String() != "value2" || rec.Header().Get("ETag") == etag {
		t.Fatalf("after overwrite: %d %q ETag %s", rec.Code, rec.Body, rec.Header().Get("ETag"))
	}
}

func TestHead(t *testing.T) {
	s, _, _ := newFakeServer(t, nil)
	h := s.Handler()
	do(t, h, http.MethodPut, "/cache/k", strings.NewReader("twelve bytes"), "Content-Type", "text/csv")
	rec := do(t, h, http.MethodHead, "/cache/k", nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if rec.Body.Len() != 0 {
		t.Fatalf("HEAD has a body %q", rec.Body)
	}
	if cl := rec.Header().Get("Content-Length"); cl != "12" {
		t.Fatalf("Content-Length %q, want 12", cl)
	}
	if rec.Header().Get("Content-Type") != "text/csv" || rec.Header().Get("ETag") == "" {
		t.Fatalf("HEAD headers %v", rec.Header())
	}
	rec = do(t, h, http.MethodHead, "/cache/missing", nil)
	if rec.Code != http.StatusNotFound || rec.Body.Len() != 0 {
		t.Fatalf("HEAD missing: %d %q", rec.Code, rec.Body)
	}
}

func TestGetMissing404(t *testing.T) {
	s, _, _ := newFakeServer(t, nil)
	rec := do(t, s.Handler(), http.MethodGet, "/cache/nope", nil)
	wantError(t, rec, http.StatusNotFound, CodeNotFound)
}

func TestDelete(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	h := s.Handler()
	do(t, h, http.MethodPut, "/cache/k", strings.NewReader("v"))
	for i, hdr := range [][]string{nil, {"X-Is-Sync", "true"}} {
		rec := do(t, h, http.MethodDelete, "/cache/k", nil, hdr...)
		wantStatus(t, rec.Code, http.StatusNoContent, rec.Body.Bytes())
		if rec.Body.Len() != 0 {
			t.Fatalf("DELETE body %q", rec.Body)
		}
		if d := fc.deletes[i]; d.key != "k" || d.local != (hdr != nil) {
			t.Fatalf("delete %d reached the cache as %+v", i, d)
		}
	}
	rec := do(t, h, http.MethodGet, "/cache/k", nil)
	wantError(t, rec, http.StatusNotFound, CodeNotFound)
}

func TestIsSyncIsLocal(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	h := s.Handler()
	cases := []struct {
		header string
		local  bool
	}{{"", false}, {"true", true}, {"TRUE", true}, {"1", true}, {"false", false}}
	for _, c := range cases {
		var hdr []string
		if c.header != "" {
			hdr = []string{"X-Is-Sync", c.header}
		}
		for _, ct := range []string{"application/json", "text/plain"} {
			rec := do(t, h, http.MethodPut, "/cache/k", strings.NewReader(`{"value":"v"}`), append(hdr, "Content-Type", ct)...)
			wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
			if w := fc.lastWrite(t); w.Local != c.local {
				t.Fatalf("X-Is-Sync %q, %s: Local %v, want %v", c.header, ct, w.Local, c.local)
			}
		}
	}
	rec := do(t, h, http.MethodPut, "/cache/k", strings.NewReader("v"), "X-Is-Sync", "maybe")
	wantError(t, rec, http.StatusBadRequest, CodeBadRequest)
}

// listPage decodes a GET /cache answer.
type listPage struct {
	Keys []string `json:"keys"`
	Next *string  `json:"next"`
}

func getList(t testing.TB, s *Server, query string) listPage {
	t.Helper()
	rec := do(t, s.Handler(), http.MethodGet, "/cache"+query, nil)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	var p listPage
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Keys == nil || p.Next == nil {
		t.Fatalf("list answer %s: want keys and next (%v)", rec.Body, err)
	}
	return p
}

func TestListPagination(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("user/%02d", i)
		want = append(want, k)
		fc.entries[k] = fc.entries[""] // the value does not matter to List
	}
	fc.entries["other"] = fc.entries[""]
	for i := range 300 { // internal keys sort first and must never show
		fc.entries[fmt.Sprintf("\x00blob/%03d", i)] = fc.entries[""]
	}

	var got []string
	after, pages := "", 0
	for {
		p := getList(t, s, "?prefix=user/&limit=10&after="+after)
		got = append(got, p.Keys...)
		pages++
		if *p.Next == "" {
			break
		}
		if len(p.Keys) != 10 || *p.Next != p.Keys[len(p.Keys)-1] {
			t.Fatalf("page %d: %d keys, next %q", pages, len(p.Keys), *p.Next)
		}
		after = *p.Next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("paged %d times through %v, want 3 pages of %v", pages, got, want)
	}

	p := getList(t, s, "?limit=3")
	if strings.Join(p.Keys, ",") != "other,user/00,user/01" || *p.Next != "user/01" {
		t.Fatalf("unprefixed listing %v next %q: internal keys leak or order is wrong", p.Keys, *p.Next)
	}
	p = getList(t, s, "")
	if len(p.Keys) != 26 || *p.Next != "" {
		t.Fatalf("default listing: %d keys next %q, want 26 and done", len(p.Keys), *p.Next)
	}
	if p = getList(t, s, "?prefix=%00"); len(p.Keys) != 0 {
		t.Fatalf("listing internal prefix gave %v", p.Keys)
	}
	if p = getList(t, s, "?prefix=none"); len(p.Keys) != 0 || *p.Next != "" {
		t.Fatalf("empty listing %+v", p)
	}
	if p = getList(t, s, "?limit=1000000"); len(p.Keys) != 26 {
		t.Fatalf("a limit over the maximum is capped, got %d keys", len(p.Keys))
	}
}

// onlyReader hides the type of a reader so the request carries no
// Content-Length and the body is read to find its size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestValueTooLargeWithoutLength(t *testing.T) {
	s, fc, _ := newFakeServer(t, func(c *Config) { c.MaxValueBytes = 100 })
	h := s.Handler()
	for _, n := range []int{100, 101, 10000} {
		req := httptest.NewRequest(http.MethodPut, "/cache/k", onlyReader{strings.NewReader(strings.Repeat("x", n))})
		if req.ContentLength != -1 {
			t.Fatalf("ContentLength %d, want unknown", req.ContentLength)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if n <= 100 {
			wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
			if w := fc.lastWrite(t); len(w.Value) != n {
				t.Fatalf("stored %d bytes, want %d", len(w.Value), n)
			}
			continue
		}
		wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)
	}
	if len(fc.writes) != 1 {
		t.Fatalf("%d writes reached the cache, want 1", len(fc.writes))
	}
}

// TestContentLengthOverNetwork checks over a real connection that every
// GET and HEAD answer has a Content-Length, short values included (net/http
// sets it for bodies written whole) and long ones (set by the handler).
func TestContentLengthOverNetwork(t *testing.T) {
	s, _, _ := newFakeServer(t, nil)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, n := range []int{0, 10, autoLengthBytes, autoLengthBytes + 1, 100000} {
		key := fmt.Sprintf("%s/cache/v%d", ts.URL, n)
		req, _ := http.NewRequest(http.MethodPut, key, strings.NewReader(strings.Repeat("x", n)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ = http.NewRequest(method, key, nil)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(n) || len(resp.TransferEncoding) != 0 {
				t.Fatalf("%s of %d bytes: status %d, Content-Length %d, Transfer-Encoding %v",
					method, n, resp.StatusCode, resp.ContentLength, resp.TransferEncoding)
			}
			if method == http.MethodGet && len(body) != n {
				t.Fatalf("GET of %d bytes read %d", n, len(body))
			}
		}
	}
}

// TestConditionalWrites: If-Match and If-None-Match make PUT and DELETE
// conditional on the key's current version (the ETag of a GET); a write
// whose condition fails answers 412 precondition_failed and changes
// nothing, and a header that is not * or one entity tag is 400.
func TestConditionalWrites(t *testing.T) {
	s, f, _ := newFakeServer(t, nil)
	h := s.Handler()
	put := func(value string, headers ...string) *httptest.ResponseRecorder {
		return do(t, h, http.MethodPut, "/cache/k", strings.NewReader(value), headers...)
	}
	wantStatus(t, put("first", "If-None-Match", "*").Code, http.StatusOK, nil)
	rec := put("second", "If-None-Match", "*")
	wantStatus(t, rec.Code, http.StatusPreconditionFailed, rec.Body.Bytes())
	if !strings.Contains(rec.Body.String(), `"code":"precondition_failed"`) {
		t.Fatalf("412 body %q", rec.Body)
	}
	etag := do(t, h, http.MethodGet, "/cache/k", nil).Header().Get("ETag")
	stale := `"` + strings.Repeat("0", 31) + `1"`
	wantStatus(t, put("third", "If-Match", stale).Code, http.StatusPreconditionFailed, nil)
	wantStatus(t, put("third", "If-None-Match", etag).Code, http.StatusPreconditionFailed, nil)
	if got := do(t, h, http.MethodGet, "/cache/k", nil).Body.String(); got != "first" {
		t.Fatalf("after refused writes the value is %q, want first", got)
	}
	wantStatus(t, put("third", "If-Match", etag).Code, http.StatusOK, nil)
	wantStatus(t, put("fourth", "If-Match", "*").Code, http.StatusOK, nil)

	// Reads: an If-Match naming another version is 412, a weak tag never
	// matches it; one naming the current version reads.
	rec = do(t, h, http.MethodGet, "/cache/k", nil, "If-Match", etag)
	wantStatus(t, rec.Code, http.StatusPreconditionFailed, rec.Body.Bytes())
	now := do(t, h, http.MethodGet, "/cache/k", nil).Header().Get("ETag")
	wantStatus(t, do(t, h, http.MethodGet, "/cache/k", nil, "If-Match", "W/"+now).Code, http.StatusPreconditionFailed, nil)
	if rec := do(t, h, http.MethodGet, "/cache/k", nil, "If-Match", etag+", "+now); rec.Code != http.StatusOK || rec.Body.String() != "fourth" {
		t.Fatalf("GET with If-Match naming the current version: %d %q", rec.Code, rec.Body)
	}
	wantStatus(t, do(t, h, http.MethodHead, "/cache/k", nil, "If-Match", etag).Code, http.StatusPreconditionFailed, nil)

	rec = do(t, h, http.MethodDelete, "/cache/k", nil, "If-Match", etag) // no longer current
	wantStatus(t, rec.Code, http.StatusPreconditionFailed, rec.Body.Bytes())
	cur := do(t, h, http.MethodGet, "/cache/k", nil).Header().Get("ETag")
	wantStatus(t, do(t, h, http.MethodDelete, "/cache/k", nil, "If-Match", cur).Code, http.StatusNoContent, nil)
	if _, ok := f.Get("k"); ok {
		t.Fatal("the key survived a DELETE whose If-Match held")
	}
	wantStatus(t, do(t, h, http.MethodDelete, "/cache/k", nil, "If-Match", "*").Code, http.StatusPreconditionFailed, nil)

	for _, bad := range [][2]string{{"If-Match", `"abc"`}, {"If-Match", etag + ", " + etag}, {"If-Match", "W/" + etag},
		{"If-None-Match", "nonsense"}, {"If-Match", `"` + strings.Repeat("0", 32) + `"`}} {
		rec := put("x", bad[0], bad[1])
		wantStatus(t, rec.Code, http.StatusBadRequest, rec.Body.Bytes())
	}
}

// TestPutJSONWithTTLQuery: ?ttl= applies to a JSON body without a
// "duration"; both at once are 400, not one silently dropped.
func TestPutJSONWithTTLQuery(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	h := s.Handler()
	rec := do(t, h, http.MethodPut, "/cache/j?ttl=5s", strings.NewReader(`{"value": "v"}`), "Content-Type", "application/json")
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	if w := fc.lastWrite(t); w.ExpiresAt != testNow.Add(5*time.Second).UnixNano() {
		t.Fatalf("JSON body with ?ttl=5s expires at %d, want now+5s", w.ExpiresAt)
	}
	rec = do(t, h, http.MethodPut, "/cache/j?ttl=5s", strings.NewReader(`{"value": "v", "duration": "1h"}`), "Content-Type", "application/json")
	wantStatus(t, rec.Code, http.StatusBadRequest, rec.Body.Bytes())
}

// A JSON body whose value is not a string is 400, and the answer names the
// raw form as the way to store a JSON document.
func TestPutJSONValueNotString(t *testing.T) {
	s, _, _ := newFakeServer(t, nil)
	h := s.Handler()
	for _, body := range []string{`{"value": {"a": 1}}`, `{"value": 5}`, `{"value": ["x"]}`, `{"value": null}`} {
		rec := do(t, h, http.MethodPut, "/cache/doc", strings.NewReader(body), "Content-Type", "application/json")
		wantStatus(t, rec.Code, http.StatusBadRequest, rec.Body.Bytes())
		if !strings.Contains(rec.Body.String(), "another Content-Type") {
			t.Fatalf("%s: answer %s does not name the raw form", body, rec.Body)
		}
	}
}

// Keys that are not UTF-8 are refused, as is a JSON value with invalid
// UTF-8 (never silently replaced); values are served with nosniff.
func TestUTF8KeysAndValues(t *testing.T) {
	s, f, _ := newFakeServer(t, nil)
	h := s.Handler()
	for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
		rec := do(t, h, method, "/cache/%FF%FE", strings.NewReader("v"))
		wantStatus(t, rec.Code, http.StatusBadRequest, rec.Body.Bytes())
	}
	if _, ok := f.Get("\xff\xfe"); ok {
		t.Fatal("a key that is not UTF-8 was stored")
	}
	rec := do(t, h, http.MethodPut, "/cache/j", strings.NewReader("{\"value\": \"a\xffb\"}"), "Content-Type", "application/json")
	wantStatus(t, rec.Code, http.StatusBadRequest, rec.Body.Bytes())
	rec = do(t, h, http.MethodPut, "/cache/ok/é", strings.NewReader("<b>v</b>"), "Content-Type", "text/plain")
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	rec = do(t, h, http.MethodGet, "/cache/ok/%C3%A9", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET: %d, headers %v", rec.Code, rec.Header())
	}
}

// A listing walked page by page ends, and gives every UTF-8 key once, also
// when keys that are not UTF-8 (stored before they were refused) sit
// between them, whole pages of them included.
func TestListingSkipsKeysNotUTF8(t *testing.T) {
	s, f, _ := newFakeServer(t, nil)
	h := s.Handler()
	var want []string
	for i := range 5 {
		k := fmt.Sprintf("k%d", i)
		want = append(want, k)
		for _, key := range []string{k, k + "\xff0", k + "\xff1", k + "\xff2", k + "\xff3"} {
			if _, err := f.Put(context.Background(), cluster.Write{Key: key, Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatalf("the listing does not end: %v", got)
		}
		rec := do(t, h, http.MethodGet, "/cache?limit=2&after="+url.QueryEscape(after), nil)
		wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
		var ans listAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatal(err)
		}
		got = append(got, ans.Keys...)
		if ans.Next == "" {
			break
		}
		after = ans.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %q, want %q", got, want)
	}
}
