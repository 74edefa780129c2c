package httpd

// Fuzz targets of the request parsers. Their seed corpora run as ordinary
// tests; `make fuzz` runs each for a while.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/disperse/disperse/blob"
)

// FuzzParseTTL: a TTL is accepted exactly when it is whole nanoseconds or a
// Go duration with a unit, never negative; what is refused is a 400.
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"", "0", "9000000000000", "90s", "1h30m", "-1", "-1s", "1.5", "1.5s", "soon",
		"99999999999999999999", "2562047h", "0s", "1e9", "+5s", " 5s", "5s ", "1µs", "1\x00s", "00000000000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseTTL(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Fatalf("parseTTL(%q): %v, want a 400", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("parseTTL(%q) = %v, negative", s, d)
		}
		if isDigits(s) {
			if n, perr := strconv.ParseInt(s, 10, 64); perr != nil || time.Duration(n) != d {
				t.Fatalf("parseTTL(%q) = %v, want %d nanoseconds", s, d, n)
			}
			return
		}
		if want, perr := time.ParseDuration(s); perr != nil || want != d {
			t.Fatalf("parseTTL(%q) = %v, time.ParseDuration says %v, %v", s, d, want, perr)
		}
	})
}

// FuzzParseRange: a Range answer always lies within the blob; a header
// that is not one satisfiable single range is either the whole blob or 416.
func FuzzParseRange(f *testing.F) {
	for _, c := range []struct {
		h    string
		size int64
	}{
		{"", 100}, {"bytes=0-9", 100}, {"bytes=90-", 100}, {"bytes=-10", 100}, {"bytes=-0", 100}, {"bytes=100-", 100},
		{"bytes=5-1", 100}, {"bytes=0-0", 0}, {"bytes=-5", 0}, {"bytes=0-9,20-29", 100}, {"bytes=0-99999999999999999999", 100},
		{"bytes= 1-2", 10}, {"items=0-1", 10}, {"bytes=-", 10}, {"bytes=9223372036854775807-", 1 << 62},
		{"bytes=0-9223372036854775807", 1<<63 - 1},
	} {
		f.Add(c.h, c.size)
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		off, n, partial, err := parseRange(h, size)
		if err != nil {
			if err != errRangeNotSatisfiable {
				t.Fatalf("parseRange(%q, %d): %v, want only 416", h, size, err)
			}
			return
		}
		if !partial {
			if off != 0 || n != size {
				t.Fatalf("parseRange(%q, %d) = whole answer %d+%d", h, size, off, n)
			}
			return
		}
		if off < 0 || n < 1 || off >= size || n > size-off {
			t.Fatalf("parseRange(%q, %d) = %d+%d, outside the blob", h, size, off, n)
		}
	})
}

// FuzzJSONPut: the JSON PUT body is accepted exactly when it is an object
// whose "value" is a string within the limit and whose "duration" is
// absent, null, whole nanoseconds or a Go duration string; the value
// stored is the string encoding/json reads.
func FuzzJSONPut(f *testing.F) {
	for _, s := range []string{`{"value": "test", "duration": "9000000000000"}`, `{"value": ""}`, `{"value": "v", "duration": 5}`,
		`{"value": "v", "duration": "90s"}`, `{"value": "v", "duration": null}`, `{"value": "\u00e9\ud83d\ude00"}`,
		`{"value": 5}`, `{"value": null}`, `{"duration": "5s"}`, `{"value": "v", "duration": -5}`, `{"value": "v", "duration": 1e9}`,
		`{"value": "v", "duration": "1.5"}`, `{"value": "v"} {}`, `[]`, `"x"`, ``, `{"value": "v", "value": "w"}`,
		`{"value": "` + strings.Repeat("x", 70) + `"}`, `{"value": "\ud800"}`, `{"VALUE": "v"}`} {
		f.Add([]byte(s))
	}
	const maxValue = 64
	f.Fuzz(func(t *testing.T, body []byte) {
		v, ttl, err := parseJSONPut(body, maxValue)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge) {
				t.Fatalf("parseJSONPut(%q): %v, want a 400 or 413", body, err)
			}
			return
		}
		if len(v) > maxValue || ttl < 0 {
			t.Fatalf("parseJSONPut(%q) = %d bytes, ttl %v", body, len(v), ttl)
		}
		var ref struct {
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(body, &ref); err != nil || ref.Value == nil || *ref.Value != string(v) {
			t.Fatalf("parseJSONPut(%q) = %q; encoding/json reads %v (%v)", body, v, ref.Value, err)
		}
	})
}

// putRecorder stands in for the blob store: it records the options a PUT
// reaches it with and answers that it cannot store.
type putRecorder struct {
	Blobs
	got     *blob.PutOptions
	reached bool
}

func (p *putRecorder) ShardHandler() http.Handler { return noContent }

func (p *putRecorder) Put(_ context.Context, _ string, r io.Reader, opt blob.PutOptions) (blob.Manifest, error) {
	p.reached, p.got = true, &opt
	return blob.Manifest{}, blob.ErrUnavailable
}

// FuzzBlobQuery: PUT /blob/{id}?data=k&parity=m reaches the store only
// with k and m read as whole numbers (k at least 1, m at least 0, m 0 as
// blob.NoParity); anything else is a 400 before the store is called.
func FuzzBlobQuery(f *testing.F) {
	for _, c := range [][2]string{{"4", "2"}, {"1", "255"}, {"0", "0"}, {"-1", "2"}, {"x", "1"}, {"1", "-1"}, {"", ""},
		{"256", "0"}, {"99999999999999999999", "1"}, {"1e3", "2"}, {" 4", "2"}, {"+4", "2"}, {"4", "0x2"}, {"３", "1"}} {
		f.Add(c[0], c[1])
	}
	rec := &putRecorder{}
	s, _, _ := newFakeServer(f, func(c *Config) { c.Blobs = rec })
	h := s.Handler()
	f.Fuzz(func(t *testing.T, data, parity string) {
		*rec = putRecorder{}
		q := url.Values{"data": {data}, "parity": {parity}}
		ans := do(t, h, http.MethodPut, "/blob/b1?"+q.Encode(), strings.NewReader("x"), "Content-Type", "text/plain")
		k, kerr := strconv.Atoi(data)
		m, merr := strconv.Atoi(parity)
		valid := kerr == nil && k >= 1 && merr == nil && m >= 0
		if !rec.reached {
			if ans.Code != http.StatusBadRequest {
				t.Fatalf("data=%q parity=%q: %d %s, neither stored nor refused with 400", data, parity, ans.Code, ans.Body)
			}
			if valid && k+m <= 256 {
				t.Fatalf("data=%q parity=%q: refused, but both are valid", data, parity)
			}
			return
		}
		if !valid {
			t.Fatalf("data=%q parity=%q reached the store as %+v", data, parity, rec.got)
		}
		wantParity := m
		if m == 0 {
			wantParity = blob.NoParity
		}
		if rec.got.Data != k || rec.got.Parity != wantParity {
			t.Fatalf("data=%q parity=%q reached the store as %+v", data, parity, rec.got)
		}
	})
}
