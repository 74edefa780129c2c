package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCacheRoundTrip drives every cache call against the node's HTTP layer.
func TestCacheRoundTrip(t *testing.T) {
	n := startTestNode(t, false)
	c, _ := newTestClient(t, strings.TrimPrefix(n.url, "http://")) // a bare host:port is http
	ctx := context.Background()

	res, err := c.Put(ctx, "dir/k", []byte("hello"), &PutOptions{TTL: time.Hour, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != "dir/k" || res.Version == "" || res.ExpiresAt == nil {
		t.Fatalf("put answer %+v", res)
	}
	e, err := c.Get(ctx, "dir/k")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != "hello" || e.ContentType != "text/plain" || e.Version != res.Version || !e.ExpiresAt.Equal(*res.ExpiresAt) {
		t.Fatalf("get %+v, put %+v", e, res)
	}
	h, err := c.Head(ctx, "dir/k")
	if err != nil || h.Value != nil || h.Version != res.Version {
		t.Fatalf("head %+v %v", h, err)
	}

	// Conditional writes: a stale version and an existing key fail with 412.
	_, err = c.Put(ctx, "dir/k", []byte("x"), &PutOptions{IfMatch: "00000000099900000000000000000001"})
	if !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("put with a stale If-Match: %v", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 412 || ce.Code != "precondition_failed" || ce.Method != "PUT" {
		t.Fatalf("412 as %#v", err)
	}
	if _, err = c.Put(ctx, "dir/k", []byte("x"), &PutOptions{IfNoneMatch: "*"}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("put with If-None-Match * on an existing key: %v", err)
	}
	if _, err = c.Put(ctx, "dir/k", []byte("v2"), &PutOptions{IfMatch: res.Version, NodeLocal: true}); err != nil {
		t.Fatalf("put with the current version: %v", err)
	}
	if _, err = c.Put(ctx, "j", []byte("{}"), &PutOptions{ContentType: "application/json"}); err == nil {
		t.Fatal("a raw application/json value was sent")
	}

	if err := c.Delete(ctx, "dir/k", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "dir/k", nil); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
	_, err = c.Get(ctx, "dir/k")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) {
		t.Fatalf("get after delete: %v", err)
	}
	if got := err.Error(); got != "key not found (404 not_found)" {
		t.Errorf("404 reads %q", got)
	}

	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != "n1" || ms[0].State != "alive" {
		t.Fatalf("members %+v %v", ms, err)
	}
}

// TestListPagesAndKeys: List gives pages with a cursor; Keys walks them all.
func TestListPagesAndKeys(t *testing.T) {
	n := startTestNode(t, false)
	c, _ := newTestClient(t, n.url)
	ctx := context.Background()
	want := keyNames(25)
	for _, k := range append(slices.Clone(want), "other") {
		if _, err := c.Put(ctx, k, []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.List(ctx, "p/", "", 10)
	if err != nil || len(page.Keys) != 10 || page.Next != "p/009" {
		t.Fatalf("first page %+v %v", page, err)
	}
	page, err = c.List(ctx, "p/", page.Next, 10)
	if err != nil || page.Keys[0] != "p/010" {
		t.Fatalf("second page %+v %v", page, err)
	}
	var got []string
	for k, err := range c.Keys(ctx, "p/") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Keys: %v", got)
	}
}

// TestErrorsFromNodeBodies: the node's own 401 and 403 answers become
// *Error values matched by the sentinels.
func TestErrorsFromNodeBodies(t *testing.T) {
	n := startTestNode(t, true)
	ctx := context.Background()
	anon, _ := newTestClient(t, n.url)
	_, err := anon.Get(ctx, "k")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no token: %v", err)
	}
	reader, _ := newTestClient(t, n.url, WithToken(readToken))
	_, err = reader.Put(ctx, "k", []byte("v"), nil)
	var e *Error
	if !errors.Is(err, ErrForbidden) || !errors.As(err, &e) || e.Status != 403 || e.Message == "" {
		t.Fatalf("read token writing: %#v", err)
	}
	writer, _ := newTestClient(t, n.url, WithToken(writeToken))
	if _, err := writer.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if e, err := reader.Get(ctx, "k"); err != nil || string(e.Value) != "v" {
		t.Fatalf("read token reading: %v", err)
	}
	_, err = writer.Get(ctx, strings.Repeat("k", 5000))
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("over-long key: %v", err)
	}
}

// TestReady waits for /readyz and gives up when the context ends.
func TestReady(t *testing.T) {
	n := startTestNode(t, false)
	c, _ := newTestClient(t, n.url)
	if err := c.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.setReady(false)
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	c.sleep = func(ctx context.Context, d time.Duration) error {
		if polls++; polls == 3 {
			cancel()
		}
		return context.Cause(ctx)
	}
	err := c.Ready(ctx)
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("not ready: %v", err)
	}
	if !strings.Contains(err.Error(), "recovering") {
		t.Errorf("the node's reason is missing from %q", err)
	}
}
