package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/disperse/disperse/client"
)

// The client package against the built binary on its defaults (with
// tokens, so that the auth errors can be met): every call, the typed
// errors a node answers, a call that outlives a restart of the node, and a
// blob download resumed after its connection was cut.
func TestE2EClientAgainstNode(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	authFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(authFile, []byte("ops admin adm-token-0123456789\nviewer read rd-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpPort, gossipPort := freePort(t), freePort(t)
	flags := []string{"--auth-file", authFile, "--http-port", fmt.Sprint(httpPort), "--gossip-port", fmt.Sprint(gossipPort)}
	start := func() *proc {
		p := startNode(t, dir, flags...)
		p.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort) // the later flag wins
		return p
	}
	p := start()
	var attempts atomic.Int64
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		attempts.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	admin, err := client.New(p.url, client.WithToken("adm-token-0123456789"), client.WithHTTPClient(counting),
		client.WithRetries(50), client.WithBackoff(50*time.Millisecond, 200*time.Millisecond), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reader, _ := client.New(p.url, client.WithToken("rd-token-0123456789"))
	anonymous, _ := client.New(p.url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := admin.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	// The cache calls.
	res, err := admin.Put(ctx, "greeting", []byte("hello"), &client.PutOptions{TTL: time.Hour, ContentType: "text/plain"})
	if err != nil || res.ExpiresAt == nil {
		t.Fatalf("Put: %+v %v", res, err)
	}
	e, err := admin.Get(ctx, "greeting")
	if err != nil || string(e.Value) != "hello" || e.ContentType != "text/plain" {
		t.Fatalf("Get: %+v %v", e, err)
	}
	if h, err := admin.Head(ctx, "greeting"); err != nil || h.ExpiresAt.IsZero() {
		t.Fatalf("Head: %+v %v", h, err)
	}
	if _, err := admin.Put(ctx, "greeting", []byte("again"), &client.PutOptions{IfNoneMatch: "*"}); !errors.Is(err, client.ErrPreconditionFailed) {
		t.Fatalf("create of an existing key: %v, want ErrPreconditionFailed", err)
	}
	for i := range 5 {
		if _, err := admin.Put(ctx, fmt.Sprintf("list/%d", i), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if page, err := admin.List(ctx, "list/", "", 3); err != nil || len(page.Keys) != 3 || page.Next != "list/2" {
		t.Fatalf("List: %+v %v", page, err)
	}
	var keys []string
	for k, err := range admin.Keys(ctx, "list/") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 5 {
		t.Fatalf("Keys: %v", keys)
	}
	if err := admin.Delete(ctx, "list/0", nil); err != nil {
		t.Fatal(err)
	}
	if members, err := admin.Members(ctx); err != nil || len(members) != 1 {
		t.Fatalf("Members: %+v %v", members, err)
	}

	// Typed errors, from the node's own answers.
	for _, c := range []struct {
		what string
		err  error
		want error
	}{
		{"a missing key", func() error { _, err := admin.Get(ctx, "list/0"); return err }(), client.ErrNotFound},
		{"no token", func() error { _, err := anonymous.Get(ctx, "greeting"); return err }(), client.ErrUnauthorized},
		{"a read token writing", func() error { _, err := reader.Put(ctx, "k", []byte("v"), nil); return err }(), client.ErrForbidden},
		{"a key that is not UTF-8", func() error { _, err := admin.Get(ctx, "\xff"); return err }(), client.ErrBadRequest},
		{"a value over the limit", func() error { _, err := admin.Put(ctx, "big", make([]byte, 2<<20), nil); return err }(), client.ErrTooLarge},
		{"a missing blob", func() error { _, err := admin.StatBlob(ctx, "none"); return err }(), client.ErrNotFound},
	} {
		var ce *client.Error
		if !errors.Is(c.err, c.want) || !errors.As(c.err, &ce) || ce.Code == "" {
			t.Errorf("%s: %v, want %v with the node's code", c.what, c.err, c.want)
		}
	}

	// The blob calls.
	data := blobBytes(6<<20+17, 31)
	m, err := admin.PutBlob(ctx, "photo", bytes.NewReader(data), &client.BlobPutOptions{ContentType: "image/jpeg"})
	if err != nil || m.Size != int64(len(data)) {
		t.Fatalf("PutBlob: %+v %v", m, err)
	}
	if st, err := admin.StatBlob(ctx, "photo"); err != nil || st.SHA256 != m.SHA256 || st.Health == "" {
		t.Fatalf("StatBlob: %+v %v", st, err)
	}
	if page, err := admin.ListBlobs(ctx, "", "", 10); err != nil || len(page.Blobs) != 1 {
		t.Fatalf("ListBlobs: %+v %v", page, err)
	}
	n := 0
	for _, err := range admin.Blobs(ctx, "ph") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("Blobs: %d", n)
	}
	r, err := admin.GetBlob(ctx, "photo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlob: %d bytes, %v", len(got), err)
	}

	// A download whose connection is cut after 1 MiB resumes where it
	// stopped, through the same proxy, with the same bytes.
	var cut atomic.Bool
	proxy := cutProxy(t, strings.TrimPrefix(p.url, "http://"), 1<<20, func() { cut.Store(true) })
	viaProxy, _ := client.New("http://"+proxy, client.WithToken("adm-token-0123456789"))
	r, err = viaProxy.GetBlob(ctx, "photo")
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) || !cut.Load() {
		t.Fatalf("GetBlob cut after 1 MiB: %d bytes, %v, cut %v", len(got), err, cut.Load())
	}
	if err := admin.DeleteBlob(ctx, "photo"); err != nil {
		t.Fatal(err)
	}

	// A call made while the node is down is retried until the node is back.
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	before := attempts.Load()
	answer := make(chan error, 1)
	go func() {
		e, err := admin.Get(ctx, "greeting")
		if err == nil && string(e.Value) != "hello" {
			err = fmt.Errorf("value %q", e.Value)
		}
		answer <- err
	}()
	waitFor(t, 10*time.Second, "two refused attempts", func() bool { return attempts.Load() >= before+2 })
	start()
	if err := <-answer; err != nil {
		t.Fatalf("Get across a restart: %v", err)
	}
	t.Logf("Get across a restart: %d attempts", attempts.Load()-before)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Against a node with --rate-limit 0.5 --rate-burst 1, a client that does
// not retry meets ErrRateLimited at its second call, and one that does
// waits for the node's Retry-After and succeeds.
func TestE2EClientRateLimited(t *testing.T) {
	needBinary(t)
	p := startNode(t, t.TempDir(), "--rate-limit", "0.5", "--rate-burst", "1")
	p.waitReady(t)
	ctx := context.Background()
	once, _ := client.New(p.url, client.WithRetries(0))
	if _, err := once.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	_, err := once.Get(ctx, "k")
	var ce *client.Error
	if !errors.Is(err, client.ErrRateLimited) || !errors.As(err, &ce) || ce.Code != "rate_limited" {
		t.Fatalf("second call within the burst: %v, want ErrRateLimited", err)
	}
	patient, _ := client.New(p.url, client.WithRetries(3))
	if e, err := patient.Get(ctx, "k"); err != nil || string(e.Value) != "v" {
		t.Fatalf("a retrying client: %+v %v", e, err)
	}
}
