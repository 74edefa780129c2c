package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// blobServer serves one blob at /blob/b with Range support, like a node:
// cut makes the answers that start at byte 0 stop after that many bytes and
// drop the connection; replace, when set, is served to every Range request
// (a blob replaced between the cut and the resume).
type blobServer struct {
	mu      sync.Mutex
	data    []byte
	cut     int
	replace []byte
	ranges  []string // the Range and If-Match headers received
}

func etagOf(b []byte) string {
	s := sha256.Sum256(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (s *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data, cut := s.data, s.cut
	rng := r.Header.Get("Range")
	if rng != "" {
		s.ranges = append(s.ranges, rng+" "+r.Header.Get("If-Match"))
		if s.replace != nil {
			data = s.replace
		}
	}
	s.mu.Unlock()
	off := 0
	if spec, ok := strings.CutPrefix(rng, "bytes="); ok {
		off, _ = strconv.Atoi(strings.TrimSuffix(spec, "-"))
	}
	w.Header().Set("Etag", etagOf(data))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-off))
	if rng != "" {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	if rng == "" && cut > 0 {
		_, _ = w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // as a node that loses a shard holder mid-answer
	}
	_, _ = w.Write(data[off:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(b)
	return b
}

// TestGetBlobResumes: a download cut mid-body goes on from where it broke
// and gives the blob byte for byte.
func TestGetBlobResumes(t *testing.T) {
	data := randomBytes(3<<20 + 17)
	s := &blobServer{data: data, cut: 1 << 20}
	c, w := newTestClient(t, serve(t, s))
	r, err := c.GetBlob(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, not the blob's %d", len(got), len(data))
	}
	if len(s.ranges) != 1 || !strings.HasPrefix(s.ranges[0], "bytes=") || !strings.HasSuffix(s.ranges[0], " "+etagOf(data)) {
		t.Fatalf("resumed with %q", s.ranges)
	}
	if r.SHA256 == "" || r.Size != int64(len(data)) || len(w.all()) != 1 {
		t.Fatalf("reader %+v, waits %v", r, w.all())
	}
}

// TestGetBlobReplacedWhileResuming: when the blob under the id changed
// between the cut and the resume, the read fails with ErrBlobChanged and
// none of the new blob's bytes are delivered.
func TestGetBlobReplacedWhileResuming(t *testing.T) {
	data := randomBytes(2 << 20)
	s := &blobServer{data: data, cut: 300 << 10, replace: randomBytes(2<<20 + 5)}
	c, _ := newTestClient(t, serve(t, s))
	r, err := c.GetBlob(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrBlobChanged) {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("bytes of another blob were delivered")
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrBlobChanged) {
		t.Fatalf("a read after the failure: %v", err)
	}
}

// TestGetBlobChecksum: a body that does not hash to the ETag fails at its
// end.
func TestGetBlobChecksum(t *testing.T) {
	data := randomBytes(100 << 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", etagOf(data))
		bad := bytes.Clone(data)
		bad[500] ^= 1
		_, _ = w.Write(bad)
	})
	c, _ := newTestClient(t, serve(t, h))
	r, err := c.GetBlob(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, ErrChecksum) {
		t.Fatalf("read: %v", err)
	}
}

// TestStallTimeout: a node that sends the headers and then nothing, or
// never answers at all, is left after the timeout.
func TestStallTimeout(t *testing.T) {
	silentBody := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("Etag", etagOf(nil))
		_, _ = w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the client gave up and closed the connection
	})
	silentHead := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c, _ := newTestClient(t, serve(t, silentBody), WithTimeout(200*time.Millisecond), WithRetries(1))
	r, err := c.GetBlob(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, ErrStalled) {
		t.Fatalf("silent body: %v", err)
	}
	c, w := newTestClient(t, serve(t, silentHead), WithTimeout(200*time.Millisecond), WithRetries(1))
	if _, err := c.Get(context.Background(), "k"); !errors.Is(err, ErrStalled) || len(w.all()) != 1 {
		t.Fatalf("silent node: %v after waits %v", err, w.all())
	}
}

// pacedWriter writes p in chunks with a pause between them: a slow link.
func pacedWrite(w http.ResponseWriter, p []byte, chunk int, pause time.Duration) {
	for len(p) > 0 {
		n := min(chunk, len(p))
		_, _ = w.Write(p[:n])
		w.(http.Flusher).Flush()
		p = p[n:]
		time.Sleep(pause)
	}
}

// TestSlowSteadyTransfers: transfers that take many times the timeout but
// keep moving succeed, both ways, and so does a caller that reads slowly.
func TestSlowSteadyTransfers(t *testing.T) {
	const timeout = 150 * time.Millisecond
	data := randomBytes(64 << 10)
	var uploaded []byte
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			// Read slowly: 4 KiB every 40ms, about 640ms in all.
			var b bytes.Buffer
			buf := make([]byte, 4<<10)
			for {
				n, err := io.ReadFull(r.Body, buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
				time.Sleep(40 * time.Millisecond)
			}
			mu.Lock()
			uploaded = b.Bytes()
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"b"}`)
			return
		}
		w.Header().Set("Etag", etagOf(data))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		pacedWrite(w, data, 4<<10, 40*time.Millisecond)
	})
	c, _ := newTestClient(t, serve(t, h), WithTimeout(timeout), WithRetries(0))
	ctx := context.Background()

	r, err := c.GetBlob(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("slow download: %v", err)
	}

	// The upload's source is slow too: that never counts as a stall.
	src := &slowReader{r: bytes.NewReader(data), pause: timeout + 50*time.Millisecond, every: 16 << 10}
	if _, err := c.PutBlob(ctx, "b", src, nil); err != nil {
		t.Fatalf("slow upload: %v", err)
	}
	mu.Lock()
	ok := bytes.Equal(uploaded, data)
	mu.Unlock()
	if !ok {
		t.Fatal("the upload arrived changed")
	}

	// A caller that takes longer than the timeout between reads.
	fast := serve(t, &blobServer{data: data})
	c, _ = newTestClient(t, fast, WithTimeout(timeout), WithRetries(0))
	r, err = c.GetBlob(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	buf := make([]byte, 16<<10)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow caller: %v", err)
		}
		time.Sleep(timeout + 50*time.Millisecond)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("slow caller got other bytes")
	}
}

// slowReader pauses before every `every` bytes: a slow producer such as a
// pipe.
type slowReader struct {
	r     io.Reader
	pause time.Duration
	every int
	n     int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n%s.every == 0 {
		time.Sleep(s.pause)
	}
	p = p[:min(len(p), s.every-s.n%s.every)]
	n, err := s.r.Read(p)
	s.n += n
	return n, err
}
