package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
