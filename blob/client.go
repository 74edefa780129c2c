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
	"strconv"
	"time"
)

// HTTPClient is the ShardClient that talks to other nodes' ShardServer
// over one pooled http.Transport.
type HTTPClient struct {
	hc *http.Client
}

// NewHTTPClient returns a client with its own connection pool.
func NewHTTPClient() *HTTPClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
	return &HTTPClient{hc: &http.Client{Transport: tr}}
}

// CloseIdleConnections closes the pooled connections that are not in use.
func (c *HTTPClient) CloseIdleConnections() { c.hc.CloseIdleConnections() }

func shardURL(addr string, ref ShardRef, query string) string {
	u := "http://" + addr + ShardPathPrefix + refPath(ref)
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
		base = ErrNotFound
	case http.StatusBadRequest:
		base = ErrBadParams
	default:
		base = ErrUnavailable
	}
	return fmt.Errorf("%w: %s: %s", base, resp.Status, bytes.TrimSpace(msg))
}

func (c *HTTPClient) do(req *http.Request, want int) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != want {
		return statusError(resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Create streams a new shard to addr through a pipe; see remoteWriter.
func (c *HTTPClient) Create(ctx context.Context, addr string, ref ShardRef, blockSize int) (ShardWriter, error) {
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, shardURL(addr, ref, "bs="+strconv.Itoa(blockSize)), pr)
	if err != nil {
		return nil, err
	}
	req.ContentLength = -1
	w := &remoteWriter{pw: pw, bw: bufio.NewWriterSize(pw, 64<<10), done: make(chan error, 1)}
	go func() {
		err := c.do(req, http.StatusCreated)
		_ = pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		w.done <- err
	}()
	return w, nil
}

// remoteWriter writes framed blocks into the body of a streaming PUT.
type remoteWriter struct {
	pw   *io.PipeWriter
	bw   *bufio.Writer
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

func (w *remoteWriter) Abort() {
	_ = w.pw.CloseWithError(errors.New("blob: shard upload aborted"))
	err := <-w.done
	w.done <- err
}

// OpenBlocks streams framed blocks [from, to) of a shard from addr.
func (c *HTTPClient) OpenBlocks(ctx context.Context, addr string, ref ShardRef, from, to int) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		shardURL(addr, ref, fmt.Sprintf("from=%d&to=%d", from, to)), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return resp.Body, nil
}

// RewriteBlock sends block b to addr to replace the stored one.
func (c *HTTPClient) RewriteBlock(ctx context.Context, addr string, ref ShardRef, b int, p []byte) error {
	frame := make([]byte, blockHeaderLen+len(p))
	putBlockHeader(frame, uint64(b), p)
	copy(frame[blockHeaderLen:], p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut,
		shardURL(addr, ref, "block="+strconv.Itoa(b)), bytes.NewReader(frame))
	if err != nil {
		return err
	}
	return c.do(req, http.StatusNoContent)
}

// Remove deletes a shard on addr.
func (c *HTTPClient) Remove(ctx context.Context, addr string, ref ShardRef) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, shardURL(addr, ref, ""), nil)
	if err != nil {
		return err
	}
	return c.do(req, http.StatusNoContent)
}

// List lists the shard files on addr.
func (c *HTTPClient) List(ctx context.Context, addr string) ([]ShardInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+ShardPathPrefix, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	defer resp.Body.Close()
	var infos []ShardInfo
	if err := json.NewDecoder(resp.Body).Decode(&infos); err != nil {
		return nil, fmt.Errorf("%w: shard list from %s: %v", ErrUnavailable, addr, err)
	}
	return infos, nil
}
