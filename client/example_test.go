package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/disperse/disperse/client"
)

// ExampleClient_Get shows a read and the typed error of a missing key.
func ExampleClient_Get() {
	// A stand-in for a node: one key, and the node's 404 for the others.
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cache/greeting" {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Etag", `"0000000000010000000000000000000a"`)
			fmt.Fprint(w, "hello")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"key not found","code":"not_found"}`)
	}))
	defer node.Close()

	c, err := client.New(node.URL, client.WithTimeout(10*time.Second))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	e, err := c.Get(ctx, "greeting")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (%s, version %s)\n", e.Value, e.ContentType, e.Version)

	_, err = c.Get(ctx, "nothing")
	fmt.Println(errors.Is(err, client.ErrNotFound), err)
	// Output:
	// hello (text/plain, version 0000000000010000000000000000000a)
	// true key not found (404 not_found)
}
