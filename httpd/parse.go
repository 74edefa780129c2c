package httpd

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// keyOf returns the key of a /cache/*key request: the rest of the path,
// already URL-decoded by net/http, checked against the contract.
func (s *Server) keyOf(param string) (string, error) {
	key := strings.TrimPrefix(param, "/")
	switch {
	case key == "":
		return "", badRequest("the key is empty")
	case len(key) > s.cfg.MaxKeyBytes:
		return "", badRequest("the key is %d bytes, longer than the %d allowed", len(key), s.cfg.MaxKeyBytes)
	case strings.IndexByte(key, 0) >= 0:
		return "", badRequest("the key contains a NUL byte")
	case !utf8.ValidString(key):
		return "", badRequest("the key is not valid UTF-8 (%+q)", key)
	}
	return key, nil
}

// isSync reads the X-Is-Sync header: true means apply on this node only.
// preconditionOf reads If-Match and If-None-Match of a PUT or DELETE: "*"
// (the key exists, or does not), or one entity tag, as GET gives it in
// ETag (If-None-Match also takes it weak, W/"..."). Several tags, or one
// that is not a version of this node's form, are 400.
func preconditionOf(r *http.Request) (cluster.Precondition, error) {
	var p cluster.Precondition
	if v, ok, err := oneTag(r.Header, "If-Match", false); err != nil {
		return p, err
	} else if ok {
		if v.IsZero() {
			p.Exists = true
		} else {
			p.Match = v
		}
	}
	if v, ok, err := oneTag(r.Header, "If-None-Match", true); err != nil {
		return p, err
	} else if ok {
		if v.IsZero() {
			p.Absent = true
		} else {
			p.NotMatch = v
		}
	}
	return p, nil
}

// oneTag reads header name as "*" (the zero version) or one entity tag;
// ok is false when the header is absent.
func oneTag(h http.Header, name string, weakOK bool) (v engine.Version, ok bool, err error) {
	vals := h.Values(name)
	if len(vals) == 0 {
		return v, false, nil
	}
	tag := strings.TrimSpace(strings.Join(vals, ","))
	if tag == "*" {
		return v, true, nil
	}
	if weakOK {
		tag = strings.TrimPrefix(tag, "W/")
	}
	if len(tag) != etagLen || tag[0] != '"' || tag[etagLen-1] != '"' {
		return v, false, badRequest("%s must be * or one entity tag as ETag gives it, not %.80q", name, tag)
	}
	t, err1 := strconv.ParseUint(tag[1:17], 16, 64)
	n, err2 := strconv.ParseUint(tag[17:33], 16, 64)
	if err1 != nil || err2 != nil {
		return v, false, badRequest("%s must be * or one entity tag as ETag gives it, not %.80q", name, tag)
	}
	v = engine.Version{Time: t, Node: n}
	if v.IsZero() {
		return v, false, badRequest("%s names no version", name)
	}
	return v, true, nil
}

func isSync(r *http.Request) (bool, error) {
	v := r.Header.Get("X-Is-Sync")
	switch {
	case v == "", strings.EqualFold(v, "false"), v == "0":
		return false, nil
	case strings.EqualFold(v, "true"), v == "1":
		return true, nil
	}
	return false, badRequest("X-Is-Sync must be true or false, not %q", v)
}

// parseTTL reads a time-to-live as the contract spells it: a string of
// digits is nanoseconds, anything else a Go duration with a unit ("90s",
// "1h30m"). Zero means no expiry; negative, fractional nanoseconds and
// garbage are errors.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, badRequest("the duration is empty")
	}
	if isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, badRequest("the duration %q is out of range", s)
		}
		return time.Duration(n), nil
	}
	if s[0] == '-' {
		return 0, badRequest("the duration %q is negative", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil || !hasUnit(s) {
		return 0, badRequest("the duration %q is neither whole nanoseconds nor a Go duration such as 90s", s)
	}
	if d < 0 {
		return 0, badRequest("the duration %q is negative", s)
	}
	return d, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// hasUnit reports whether s ends in a letter, as a Go duration with a unit
// does (time.ParseDuration also accepts a bare "0").
func hasUnit(s string) bool {
	c := s[len(s)-1]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// expiresAt turns a time-to-live into an absolute expiry in Unix
// nanoseconds; 0 stays 0 (never).
func expiresAt(now time.Time, ttl time.Duration) (int64, error) {
	if ttl == 0 {
		return 0, nil
	}
	n := now.UnixNano()
	if int64(ttl) > math.MaxInt64-n {
		return 0, badRequest("the duration %s is too long", ttl)
	}
	return n + int64(ttl), nil
}

// isJSON reports whether a Content-Type is application/json, parameters
// (such as charset) aside.
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// jsonPut is the original Disperse body: {"value": "...", "duration": ...}.
type jsonPut struct {
	Value    json.RawMessage `json:"value"`
	Duration json.RawMessage `json:"duration"`
}

// jsonBodyLimit bounds a JSON PUT body: a value of maxValue bytes may take
// up to six bytes per byte once escaped (\u0000), plus the envelope.
func jsonBodyLimit(maxValue int64) int64 {
	if maxValue > (math.MaxInt64-64<<10)/6 {
		return math.MaxInt64
	}
	return 6*maxValue + 64<<10
}

// parseJSONPut reads the value and time-to-live of a JSON PUT body.
func parseJSONPut(body []byte, maxValue int64) ([]byte, time.Duration, error) {
	var p jsonPut
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, 0, badRequest("the body is not a JSON object: %v", err)
	}
	if len(p.Value) == 0 {
		return nil, 0, badRequest(`the body has no "value"`)
	}
	if !utf8.Valid(p.Value) {
		return nil, 0, badRequest(`"value" is not valid UTF-8; store bytes with another Content-Type (application/octet-stream)`)
	}
	if p.Value[0] != '"' {
		return nil, 0, badRequest(`"value" must be a JSON string; to store a JSON document, PUT its bytes as the body with another Content-Type (text/plain, application/octet-stream), and the expiry as ?ttl=`)
	}
	var v string
	if err := json.Unmarshal(p.Value, &v); err != nil {
		return nil, 0, badRequest(`"value" is not a valid JSON string: %v`, err)
	}
	if int64(len(v)) > maxValue {
		return nil, 0, tooLarge("the value is %d bytes, more than the %d allowed", len(v), maxValue)
	}
	ttl, err := parseJSONDuration(p.Duration)
	if err != nil {
		return nil, 0, err
	}
	return []byte(v), ttl, nil
}

// parseJSONDuration reads "duration": absent or null is no expiry; a JSON
// integer is nanoseconds; a JSON string is read by parseTTL.
func parseJSONDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, badRequest(`"duration" is not a valid JSON string: %v`, err)
		}
		return parseTTL(s)
	}
	s := string(raw)
	if !isDigits(s) {
		return 0, badRequest(`"duration" %s must be whole, non-negative nanoseconds or a Go duration string`, s)
	}
	return parseTTL(s)
}
