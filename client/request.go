package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// request is one API call, tried once or more.
type request struct {
	method string
	path   string // escaped, from the root of the API: "/cache/k"
	query  url.Values
	header http.Header
	// body is an in-memory body, sent again as it is on a retry.
	body []byte
	// stream is a streaming body; a retry needs it to be an io.Seeker, or
	// the failed attempt to have read none of it. size is its length, -1
	// when unknown.
	stream io.Reader
	size   int64
	// retryUnsent: the request changes state in a way that repeating it
	// could not reproduce (a conditional write), so only answers and
	// failures that prove it was not applied are retried: 429, 503, and
	// failing to connect.
	retryUnsent bool
	// want lists the success statuses.
	want []int
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// do sends r, retrying as r and the client allow, and returns the answer
// of the first attempt with a wanted status. The answer's body must be
// closed; reading it runs the client's stall timeout.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	var start int64 // the stream's offset before the first attempt
	seeker, seekable := r.stream.(io.Seeker)
	if r.stream != nil && seekable {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seekable = false
		}
	}
	for try := 0; ; try++ {
		if try > 0 && r.stream != nil && seekable {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("%s %s: rewinding the body for a retry: %w", r.method, r.path, err)
			}
		}
		resp, touched, err := c.attempt(ctx, r)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, err // the caller's cancellation or deadline
		}
		wait, ok := c.retryable(r, err, touched && !seekable)
		if !ok || try >= c.retries {
			return nil, err
		}
		wait = max(wait, c.backoff(try))
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			return nil, err // the answer would come too late anyway
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, err
		}
	}
}

// retryable reports whether a failed attempt may be tried again, and how
// long the node asked to wait first. consumed: the attempt read some of a
// stream that cannot be rewound.
func (c *Client) retryable(r *request, err error, consumed bool) (time.Duration, bool) {
	if consumed {
		return 0, false
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			return e.RetryAfter, true
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return e.RetryAfter, !r.retryUnsent
		}
		return 0, false
	}
	if isPermanent(err) {
		return 0, false
	}
	if r.retryUnsent {
		return 0, isDialError(err)
	}
	return 0, true // a connection that failed or stalled
}

// isPermanent reports whether a failure to talk to the node would fail the
// same way again: a certificate the client does not trust (or that the
// node refuses), or TLS spoken to a plain HTTP port.
func isPermanent(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.As(err, &alert)
}

// isDialError reports whether err is a failure to connect, before any byte
// of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff is the wait before retry number try+1: doubling from minBackoff
// up to maxBackoff, the upper half of it picked at random so that clients
// that failed together do not come back together.
func (c *Client) backoff(try int) time.Duration {
	d := c.minBackoff << min(try, 30)
	if d <= 0 || d > c.maxBackoff {
		d = c.maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// attempt sends r once. touched reports whether the attempt read any of
// r.stream.
func (c *Client) attempt(ctx context.Context, r *request) (resp *http.Response, touched bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	wd := newWatchdog(c.timeout, cancel)
	fail := func(err error) (*http.Response, bool, error) {
		wd.hold()
		cancel(context.Canceled)
		return nil, touched, err
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	var up *uploadBody
	switch {
	case r.body != nil:
		body = bytes.NewReader(r.body)
	case r.stream != nil:
		up = &uploadBody{src: r.stream, wd: wd}
		body = up
	}
	req, err := http.NewRequestWithContext(actx, r.method, u, body)
	if err != nil {
		return fail(err)
	}
	switch {
	case r.body != nil:
		req.ContentLength = int64(len(r.body))
	case r.stream != nil && r.size >= 0:
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err = c.hc.Do(req)
	if up != nil {
		// A source that can be rewound is rewound for the next attempt:
		// wait until no read of it is in progress. Any other source may
		// block for ever (a terminal), and is never read again anyway.
		if _, seekable := r.stream.(io.Seeker); seekable {
			touched = up.detach()
		} else {
			touched = up.detachNow()
		}
	}
	if err != nil {
		return fail(attemptError(actx, fmt.Errorf("%s %s: %w", r.method, r.path, unwrapURLError(err))))
	}
	if !slices.Contains(r.want, resp.StatusCode) {
		return fail(errorOf(resp, c.now())) // read under the watchdog
	}
	wd.hold()
	resp.Body = &downloadBody{rc: resp.Body, wd: wd, ctx: actx, cancel: cancel}
	return resp, touched, nil
}

// attemptError names the stall when the watchdog ended the attempt.
func attemptError(actx context.Context, err error) error {
	if cause := context.Cause(actx); errors.Is(cause, ErrStalled) && !errors.Is(err, ErrStalled) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// unwrapURLError drops *url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// doJSON sends r and decodes the answer's JSON body into v.
func (c *Client) doJSON(ctx context.Context, r *request, v any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := c.readAnswer(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
	}
	// Read what follows the JSON (a newline) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return nil
}

// readAnswer reads a body whole, up to the client's answer bound.
func (c *Client) readAnswer(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, c.maxAnswer+1))
	if err == nil && int64(len(b)) > c.maxAnswer {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrAnswerTooLarge, c.maxAnswer)
	}
	return b, err
}

// doNoBody sends r and discards the answer's body.
func (c *Client) doNoBody(ctx context.Context, r *request) (http.Header, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Header, nil
}
