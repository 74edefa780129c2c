package resp

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// contentType is what a value written over the Redis protocol is stored
// with, so that GET /cache answers it as bytes.
const contentType = "application/octet-stream"

// validKey reports whether k can name a key: 1 to MaxKeyBytes bytes of
// UTF-8 without a NUL byte, the rule of the REST API (httpd's keyOf), which
// keeps keys that begin with 0x00 (blob manifests) out of clients' reach
// and every key one that a URL and a JSON listing carry unchanged. A read
// of a key that is not valid finds nothing, as the key cannot exist.
func (c *conn) validKey(k []byte) bool {
	return len(k) > 0 && len(k) <= c.s.cfg.MaxKeyBytes && bytes.IndexByte(k, 0) < 0 && utf8.Valid(k)
}

// writeKey checks a key a command writes.
func (c *conn) writeKey(k []byte) (string, error) {
	switch {
	case len(k) == 0:
		return "", replyError("ERR empty keys are not allowed")
	case len(k) > c.s.cfg.MaxKeyBytes:
		return "", errorf("ERR the key is %d bytes, longer than the %d allowed", len(k), c.s.cfg.MaxKeyBytes)
	case bytes.IndexByte(k, 0) >= 0:
		return "", replyError("ERR keys containing a NUL byte are reserved")
	case !utf8.Valid(k):
		return "", replyError("ERR keys must be valid UTF-8, as in the REST API")
	}
	return string(k), nil
}

// checkValue checks the size of a value a command writes.
func (c *conn) checkValue(n int) error {
	if int64(n) > c.s.cfg.MaxValueBytes {
		return msgTooBigErr
	}
	return nil
}

var msgTooBigErr = replyError(msgTooBig)

// parseInt reads a 64-bit integer as Redis's string2ll does: an optional
// minus sign and digits, no leading zeros, no plus sign, no blanks.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	d := b
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || d[0] < '1' || d[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// intArg reads an integer argument (-ERR value is not an integer ...).
func intArg(b []byte) (int64, error) {
	n, ok := parseInt(b)
	if !ok {
		return 0, replyError(msgNotInt)
	}
	return n, nil
}

// parseFloat reads a number as INCRBYFLOAT does: no blanks, no infinities
// or NaN.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 5000 || isBlank(b[0]) || isBlank(b[len(b)-1]) {
		return 0, false
	}
	s := string(b)
	if strings.ContainsAny(s, "_xXpP") {
		return 0, false // Go syntax that Redis's strtold does not read
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// equalFold reports whether b is s, ASCII case aside; s is upper case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// upper is b in upper case, for option switches.
func upper(b []byte) string {
	if len(b) > 32 {
		return ""
	}
	return strings.ToUpper(string(b))
}

// Units of the expiry options, in nanoseconds.
const (
	unitSeconds = int64(time.Second)
	unitMillis  = int64(time.Millisecond)
)

// relativeExpiry is the absolute expiry of a time-to-live of n units from
// now, in Unix nanoseconds; a TTL that is not positive, or overflows, is
// Redis's "invalid expire time" error of cmd.
func (c *conn) relativeExpiry(n, unit int64, cmd string) (int64, error) {
	now := c.s.cfg.Now().UnixNano()
	if n <= 0 || n > (math.MaxInt64-now)/unit {
		return 0, invalidExpire(cmd)
	}
	return now + n*unit, nil
}

// absoluteExpiry is a Unix time of n units in nanoseconds.
func absoluteExpiry(n, unit int64, cmd string) (int64, error) {
	if n <= 0 || n > math.MaxInt64/unit {
		return 0, invalidExpire(cmd)
	}
	return n * unit, nil
}

// expiryOption reads one of EX, PX, EXAT, PXAT with its argument; ok is
// false when opt is none of them.
func (c *conn) expiryOption(opt string, arg []byte, cmd string) (at int64, ok bool, err error) {
	var unit int64
	var abs bool
	switch opt {
	case "EX":
		unit = unitSeconds
	case "PX":
		unit = unitMillis
	case "EXAT":
		unit, abs = unitSeconds, true
	case "PXAT":
		unit, abs = unitMillis, true
	default:
		return 0, false, nil
	}
	n, err := intArg(arg)
	if err != nil {
		return 0, true, err
	}
	if abs {
		at, err = absoluteExpiry(n, unit, cmd)
	} else {
		at, err = c.relativeExpiry(n, unit, cmd)
	}
	return at, true, err
}

// expired reports whether an absolute expiry has passed.
func (c *conn) expired(at int64) bool {
	return at != 0 && at <= c.s.cfg.Now().UnixNano()
}
