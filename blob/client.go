package blob

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"
)

// HTTPClient is the ShardClient that talks to other nodes' ShardServer
// over one pooled http.Transport. Every request is watched (see
// Config.TransferIdleTimeout): one that moves no byte for the idle limit
// while the client waits on the other node, answer headers included, is
// cut with ErrStalled.
type HTTPClient struct {
	hc      *http.Client
	tr      *http.Transport // hc's, or the one it wraps
	idle    time.Duration
	connect time.Duration
}

// NewHTTPClient returns a client with its own connection pool and the
// default timeouts, DefaultConnectTimeout and DefaultTransferIdleTimeout.
func NewHTTPClient() *HTTPClient {
	return NewHTTPClientTimeouts(DefaultConnectTimeout, DefaultTransferIdleTimeout)
}

// NewHTTPClientTimeouts returns a client with its own connection pool that
// gives up dialing a node after connect and cuts a transfer after idle
// without progress (see Config.TransferIdleTimeout). Zero means the
// default.
func NewHTTPClientTimeouts(connect, idle time.Duration) *HTTPClient {
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	if idle <= 0 {
		idle = DefaultTransferIdleTimeout
	}
	tr := &http.Transport{
		DialContext: (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		// A shard PUT waits for "100 Continue" (see Create); the transport
		// itself would send the body after this long without one.
		ExpectContinueTimeout: connect,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
	return &HTTPClient{hc: &http.Client{Transport: tr}, tr: tr, idle: idle, connect: connect}
}

// CloseIdleConnections closes the pooled connections that are not in use.
func (c *HTTPClient) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// peerURL is the base URL of a node's HTTP address (see Peer.HTTPAddr).
func peerURL(addr string) string {
	if strings.HasPrefix(addr, "https://") {
		return addr
	}
	return "http://" + addr
}

func shardURL(addr string, ref ShardRef, query string) string {
	u := peerURL(addr) + ShardPathPrefix + refPath(ref)
	if query != "" {
		u += "?" + query
	}
	return u
}

// statusError turns a failed answer into an error wrapping the sentinel
// the server's status stands for, and closes its body.
func statusError(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	var base error
	switch resp.StatusCode {
	case http.StatusNotFound:
		base = ErrNoShard
	case http.StatusInsufficientStorage:
		base = ErrDiskFull
	case http.StatusBadRequest:
		base = ErrBadParams
	default:
		base = ErrUnavailable
	}
	return fmt.Errorf("%w: %s: %s", base, resp.Status, bytes.TrimSpace(msg))
}

// newRequest makes a request whose transfer the returned watch guards.
func (c *HTTPClient) newRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, *watch, error) {
	ctx, wt := startWatch(ctx, method+" "+url, c.idle)
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		wt.stop()
		return nil, nil, err
	}
	return req, wt, nil
}

// roundTrip sends req and, when the answer has status want, returns its
// body, which the caller must close; otherwise, or on failure, it ends
// the transfer.
func (c *HTTPClient) roundTrip(req *http.Request, wt *watch, want int) (io.ReadCloser, error) {
	wt.enter()
	resp, err := c.hc.Do(req)
	wt.leave()
	if err != nil {
		wt.stop()
		if serr := wt.stall(); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	body := &watchedBody{rc: resp.Body, w: wt}
	if resp.StatusCode != want {
		resp.Body = body
		return nil, statusError(resp)
	}
	return body, nil
}

// do sends req, wants status want and drains the answer.
func (c *HTTPClient) do(req *http.Request, wt *watch, want int) error {
	body, err := c.roundTrip(req, wt, want)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, body)
	return body.Close()
}

// Create streams a new shard to addr through a pipe; see remoteWriter. It
// returns once addr has answered "100 Continue", that is once it has
// created the shard: a holder that does not answer within the connect
// timeout, or refuses the shard, fails Create at once, before any block
// is sent, so that the caller can turn to another node.
func (c *HTTPClient) Create(ctx context.Context, addr string, ref ShardRef, blockSize int) (ShardWriter, error) {
	pr, pw := io.Pipe()
	req, wt, err := c.newRequest(ctx, http.MethodPut, shardURL(addr, ref, "bs="+strconv.Itoa(blockSize)), nil)
	if err != nil {
		return nil, err
	}
	started := make(chan error, 2)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { started <- nil },
	}))
	req.Header.Set("Expect", "100-continue")
	// Reads of the pipe pause the watch (see watchedSource).
	req.Body = &watchedSource{r: pr, w: wt}
	req.ContentLength = -1
	w := &remoteWriter{pw: pw, bw: bufio.NewWriterSize(pw, 64<<10), wt: wt, done: make(chan error, 1)}
	go func() {
		err := c.do(req, wt, http.StatusCreated)
		_ = pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		w.done <- err
		if err == nil { // cannot happen before Create returned: no end marker was sent
			err = fmt.Errorf("%w: %s answered before the shard was sent", ErrUnavailable, addr)
		}
		started <- err
	}()
	t := time.NewTimer(c.connect)
	defer t.Stop()
	select {
	case err := <-started:
		if err == nil {
			return w, nil
		}
		<-w.done
		return nil, err
	case <-t.C:
		w.Abort()
		return nil, fmt.Errorf("%w: %s did not take shard %s/%x/%d within %v", ErrUnavailable, addr, ref.ID, ref.Gen, ref.Index, c.connect)
	}
}

// remoteWriter writes framed blocks into the body of a streaming PUT. A
// write blocks while the holder does not take the bytes; the request's
// watch cuts it if that lasts.
type remoteWriter struct {
	pw   *io.PipeWriter
	bw   *bufio.Writer
	wt   *watch
	done chan error
	n    uint64
	hdr  [blockHeaderLen]byte
}

func (w *remoteWriter) WriteBlock(p []byte) error {
	putBlockHeader(w.hdr[:], w.n, p)
	w.n++
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return w.fail(err)
	}
	if _, err := w.bw.Write(p); err != nil {
		return w.fail(err)
	}
	return nil
}

// fail returns the request's own error when the pipe broke because of it.
func (w *remoteWriter) fail(err error) error {
	_ = w.pw.CloseWithError(err)
	if rerr := <-w.done; rerr != nil {
		w.done <- rerr
		return rerr
	}
	w.done <- nil
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func (w *remoteWriter) Commit() error {
	putEndHeader(w.hdr[:], w.n)
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return w.fail(err)
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(err)
	}
	_ = w.pw.Close()
	err := <-w.done
	w.done <- err
	return err
}

// Abort ends the upload at once: the holder sees the connection close
// before the end marker and discards the shard.
func (w *remoteWriter) Abort() {
	_ = w.pw.CloseWithError(errors.New("blob: shard upload aborted"))
	w.wt.stop()
	err := <-w.done
	w.done <- err
}

// OpenBlocks streams framed blocks [from, to) of a shard from addr.
func (c *HTTPClient) OpenBlocks(ctx context.Context, addr string, ref ShardRef, from, to int) (io.ReadCloser, error) {
	req, wt, err := c.newRequest(ctx, http.MethodGet,
		shardURL(addr, ref, fmt.Sprintf("from=%d&to=%d", from, to)), nil)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(req, wt, http.StatusOK)
}

// RewriteBlock sends block b to addr to replace the stored one.
func (c *HTTPClient) RewriteBlock(ctx context.Context, addr string, ref ShardRef, b int, p []byte) error {
	frame := make([]byte, blockHeaderLen+len(p))
	putBlockHeader(frame, uint64(b), p)
	copy(frame[blockHeaderLen:], p)
	req, wt, err := c.newRequest(ctx, http.MethodPut,
		shardURL(addr, ref, "block="+strconv.Itoa(b)), bytes.NewReader(frame))
	if err != nil {
		return err
	}
	return c.do(req, wt, http.StatusNoContent)
}

// Remove deletes a shard on addr.
func (c *HTTPClient) Remove(ctx context.Context, addr string, ref ShardRef) error {
	req, wt, err := c.newRequest(ctx, http.MethodDelete, shardURL(addr, ref, ""), nil)
	if err != nil {
		return err
	}
	return c.do(req, wt, http.StatusNoContent)
}

// List lists the shard files on addr.
func (c *HTTPClient) List(ctx context.Context, addr string) ([]ShardInfo, error) {
	req, wt, err := c.newRequest(ctx, http.MethodGet, peerURL(addr)+ShardPathPrefix, nil)
	if err != nil {
		return nil, err
	}
	body, err := c.roundTrip(req, wt, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var infos []ShardInfo
	if err := json.NewDecoder(body).Decode(&infos); err != nil {
		return nil, fmt.Errorf("%w: shard list from %s: %w", ErrUnavailable, addr, err)
	}
	return infos, nil
}

// getJSON sends a GET to url and decodes a 200 answer into v.
func (c *HTTPClient) getJSON(ctx context.Context, url string, v any) error {
	req, wt, err := c.newRequest(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	body, err := c.roundTrip(req, wt, http.StatusOK)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(io.LimitReader(body, maxRecordBytes)).Decode(v); err != nil {
		return fmt.Errorf("%w: answer of %s: %w", ErrUnavailable, url, err)
	}
	return nil
}

// Stat describes a shard on addr.
func (c *HTTPClient) Stat(ctx context.Context, addr string, ref ShardRef) (ShardInfo, error) {
	var info ShardInfo
	err := c.getJSON(ctx, shardURL(addr, ref, "stat=1"), &info)
	return info, err
}

// GetRecord asks addr for its record of blob id.
func (c *HTTPClient) GetRecord(ctx context.Context, addr, id string) (Record, bool, error) {
	var rec Record
	err := c.getJSON(ctx, peerURL(addr)+ShardPathPrefix+id, &rec)
	if errors.Is(err, ErrNoShard) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	if err := rec.check(id); err != nil {
		return Record{}, false, fmt.Errorf("%w: record from %s: %w", ErrUnavailable, addr, err)
	}
	return rec, true, nil
}

// PutRecord tells addr of a new record of blob id.
func (c *HTTPClient) PutRecord(ctx context.Context, addr, id string, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	req, wt, err := c.newRequest(ctx, http.MethodPut, peerURL(addr)+ShardPathPrefix+id, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, wt, http.StatusNoContent)
}
