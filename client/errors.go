package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. A failed request returns an *Error; errors.Is matches it
// against these by the code of the node's error body (or, when the body is
// not the node's JSON, by the HTTP status).
var (
	ErrBadRequest          = errors.New("client: bad request")
	ErrUnauthorized        = errors.New("client: unauthorized")
	ErrForbidden           = errors.New("client: forbidden")
	ErrNotFound            = errors.New("client: not found")
	ErrMethodNotAllowed    = errors.New("client: method not allowed")
	ErrPreconditionFailed  = errors.New("client: precondition failed")
	ErrTooLarge            = errors.New("client: too large")
	ErrRangeNotSatisfiable = errors.New("client: range not satisfiable")
	ErrRateLimited         = errors.New("client: rate limited")
	ErrInternal            = errors.New("client: internal server error")
	ErrUnavailable         = errors.New("client: unavailable")
	ErrDiskFull            = errors.New("client: disk full")
	ErrMemoryFull          = errors.New("client: memory full")
)

// Errors of the client itself, not answered by the node.
var (
	// ErrStalled: no byte moved between the client and the node for the
	// client's timeout (connecting, sending or receiving).
	ErrStalled = errors.New("client: no progress within the timeout")
	// ErrBlobChanged: a blob download was cut and, when it resumed, the
	// node had a different blob under that id. The bytes read so far belong
	// to the old blob; nothing of the new one is spliced onto them.
	ErrBlobChanged = errors.New("client: the blob changed while it was read")
	// ErrAnswerTooLarge: a cache value or JSON answer was longer than the
	// client's bound (WithMaxAnswerBytes).
	ErrAnswerTooLarge = errors.New("client: answer longer than the client's bound")
	// ErrChecksum: the bytes of a blob download do not hash to its sha256.
	ErrChecksum = errors.New("client: blob checksum mismatch")
)

// codeSentinels maps the codes of the node's error bodies to the sentinels.
var codeSentinels = map[string]error{
	"bad_request":           ErrBadRequest,
	"unauthorized":          ErrUnauthorized,
	"forbidden":             ErrForbidden,
	"not_found":             ErrNotFound,
	"method_not_allowed":    ErrMethodNotAllowed,
	"precondition_failed":   ErrPreconditionFailed,
	"too_large":             ErrTooLarge,
	"range_not_satisfiable": ErrRangeNotSatisfiable,
	"rate_limited":          ErrRateLimited,
	"internal":              ErrInternal,
	"unavailable":           ErrUnavailable,
	"disk_full":             ErrDiskFull,
	"memory_full":           ErrMemoryFull,
}

// statusCodes gives a code to an error answer without one (a proxy's HTML
// page, a plain-text body). 507 has two codes and so gets none.
var statusCodes = map[int]string{
	http.StatusBadRequest:                   "bad_request",
	http.StatusUnauthorized:                 "unauthorized",
	http.StatusForbidden:                    "forbidden",
	http.StatusNotFound:                     "not_found",
	http.StatusMethodNotAllowed:             "method_not_allowed",
	http.StatusPreconditionFailed:           "precondition_failed",
	http.StatusRequestEntityTooLarge:        "too_large",
	http.StatusRequestedRangeNotSatisfiable: "range_not_satisfiable",
	http.StatusTooManyRequests:              "rate_limited",
	http.StatusInternalServerError:          "internal",
	http.StatusServiceUnavailable:           "unavailable",
}

// Error is a request the node answered with an error status.
type Error struct {
	// Method and Path are the request's ("GET", "/cache/k").
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Code is the snake_case code of the node's error body, or one derived
	// from Status when the body had none.
	Code string
	// Message is the node's human sentence, or the start of a body that was
	// not the node's JSON, or the status text.
	Message string
	// RetryAfter is the answer's Retry-After, zero when it had none.
	RetryAfter time.Duration
}

// Error reads "key not found (404 not_found)".
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (%d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// Is matches the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}

// errorBody is the node's JSON error body. "message" is read too, for
// proxies and gateways that answer in that shape.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// errorOf reads the error answer resp (and closes its body).
func errorOf(resp *http.Response, now time.Time) *Error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{
		Method:     resp.Request.Method,
		Path:       resp.Request.URL.Path,
		Status:     resp.StatusCode,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now),
	}
	var b errorBody
	if json.Unmarshal(raw, &b) == nil && (b.Error != "" || b.Message != "" || b.Code != "") {
		e.Code = b.Code
		e.Message = b.Error
		if e.Message == "" {
			e.Message = b.Message
		}
	} else {
		e.Message = plainMessage(raw)
	}
	if e.Code == "" {
		e.Code = statusCodes[resp.StatusCode]
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
		if e.Message == "" {
			e.Message = "error answer"
		}
	}
	return e
}

// plainMessage makes one short line of a body that is not the node's JSON:
// its first non-empty line, at most 200 bytes, only when it is text.
func plainMessage(raw []byte) string {
	if !utf8.Valid(raw) {
		return ""
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "<") {
			continue // blank, or HTML markup
		}
		if len(line) > 200 {
			line = strings.ToValidUTF8(line[:200], "") + "..."
		}
		return line
	}
	return ""
}
