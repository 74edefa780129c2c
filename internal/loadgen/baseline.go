package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// baselineStore is the floor `disperse bench --baseline` measures against: a
// bare gin router over a mutex-guarded map serving GET and PUT /cache/*key
// with the raw body, nothing durable, no cluster. The node's figures divided
// by these show what the log, the index and the contract cost.
type baselineStore struct {
	mu sync.RWMutex
	m  map[string]baselineValue
}

type baselineValue struct {
	contentType string
	value       []byte
}

func (s *baselineStore) handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/cache/*key", s.get)
	r.PUT("/cache/*key", s.put)
	return r
}

func (s *baselineStore) get(c *gin.Context) {
	s.mu.RLock()
	v, ok := s.m[c.Param("key")]
	s.mu.RUnlock()
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such key", "code": "not_found"})
		return
	}
	c.Data(http.StatusOK, v.contentType, v.value)
}

func (s *baselineStore) put(c *gin.Context) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error(), "code": "bad_request"})
		return
	}
	key := c.Param("key")
	s.mu.Lock()
	s.m[key] = baselineValue{contentType: c.GetHeader("Content-Type"), value: body}
	s.mu.Unlock()
	c.JSON(http.StatusOK, gin.H{"key": key[1:], "version": "", "expires_at": nil})
}

// startBaseline serves the baseline on a free loopback port and returns its
// base URL and a function that stops it.
func startBaseline() (string, func(), error) {
	s := &baselineStore{m: map[string]baselineValue{}}
	return serveLoopback(s.handler())
}

// serveBaseline serves the baseline on addr, in this process, until ctx is
// done: a baseline in a process of its own competes for the machine as a
// node does.
func serveBaseline(ctx context.Context, addr string, w io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := &baselineStore{m: map[string]baselineValue{}}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(w, "baseline (gin + map) serving on http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveLoopback serves h on a free loopback port and returns its base URL
// and a function that shuts it down.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// blobBaseline is the floor the blob bench measures against: a bare
// net/http handler that writes a PUT body to one file and fsyncs it before
// answering, and serves that file to GET. No hashing, no coding, no cluster.
type blobBaseline struct {
	dir string
}

func (s *blobBaseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/blob/")
	if !ok || id == "" || strings.ContainsAny(id, "/\\") || id == "." || id == ".." {
		http.Error(w, "no such route", http.StatusNotFound)
		return
	}
	path := filepath.Join(s.dir, id)
	switch r.Method {
	case http.MethodPut:
		n, err := writeSynced(path, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"size":%d}`, id, n)
	case http.MethodGet, http.MethodHead:
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, "no such blob", http.StatusNotFound)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Time{}, f)
	case http.MethodDelete:
		if err := os.Remove(path); err != nil {
			http.Error(w, "no such blob", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// writeSynced copies body into a new file at path and fsyncs it.
func writeSynced(path string, body io.Reader) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(f, body, make([]byte, 256<<10))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// startBlobBaseline serves the blob baseline over a fresh temporary
// directory on a free loopback port; stop shuts it and removes the directory.
func startBlobBaseline() (string, func(), error) {
	dir, err := os.MkdirTemp("", "disperse-bench-blob-")
	if err != nil {
		return "", nil, err
	}
	url, stop, err := serveLoopback(&blobBaseline{dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return url, func() { stop(); os.RemoveAll(dir) }, nil
}
