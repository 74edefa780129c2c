package httpd

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// newRealServer wires a Server to a real engine in a temporary directory
// and a real single cluster node on a free loopback port.
func newRealServer(t testing.TB) (*Server, *cluster.Node) {
	t.Helper()
	n := openRealNode(t, engine.Config{Dir: t.TempDir()})
	return n.s, n.node
}

// badInput is one request the server must refuse, and how.
type badInput struct {
	name    string
	method  string
	target  string
	body    string
	headers []string // name, value pairs
	status  int
	code    string
}

const jsonCT = "application/json"

func badInputs() []badInput {
	js := func(name, key, body string) badInput {
		return badInput{name: name, method: http.MethodPut, target: "/cache/" + key, body: body,
			headers: []string{"Content-Type", jsonCT}, status: http.StatusBadRequest, code: CodeBadRequest}
	}
	raw := func(name, target string) badInput {
		return badInput{name: name, method: http.MethodPut, target: target, body: "v",
			headers: []string{"Content-Type", "text/plain"}, status: http.StatusBadRequest, code: CodeBadRequest}
	}
	big := strings.Repeat("x", DefaultMaxValueBytes+1)
	return []badInput{
		js("truncated JSON", "b1", `{"value": "x"`),
		js("JSON not an object", "b2", `"x"`),
		js("JSON trailing garbage", "b3", `{"value": "x"} {}`),
		js("empty JSON body", "b4", ``),
		js("missing value", "b5", `{"duration": "5s"}`),
		js("value a number", "b6", `{"value": 5}`),
		js("value null", "b7", `{"value": null}`),
		js("value an array", "b8", `{"value": ["a"]}`),
		js("negative duration string", "b9", `{"value": "v", "duration": "-5s"}`),
		js("negative duration number", "b10", `{"value": "v", "duration": -5}`),
		js("negative duration digits", "b11", `{"value": "v", "duration": "-5"}`),
		js("fractional duration number", "b12", `{"value": "v", "duration": 1.5}`),
		js("fractional duration string", "b13", `{"value": "v", "duration": "1.5"}`),
		js("exponent duration", "b14", `{"value": "v", "duration": 1e9}`),
		js("garbage duration", "b15", `{"value": "v", "duration": "soon"}`),
		js("boolean duration", "b16", `{"value": "v", "duration": true}`),
		js("object duration", "b17", `{"value": "v", "duration": {}}`),
		js("duration out of range", "b18", `{"value": "v", "duration": "99999999999999999999"}`),
		js("duration past the end of time", "b19", `{"value": "v", "duration": "2562047h"}`),
		raw("negative ttl", "/cache/t1?ttl=-1"),
		raw("negative ttl with unit", "/cache/t2?ttl=-1s"),
		raw("fractional ttl", "/cache/t3?ttl=1.5"),
		raw("garbage ttl", "/cache/t4?ttl=soon"),
		raw("empty ttl", "/cache/t5?ttl="),
		raw("key too long", "/cache/"+strings.Repeat("k", DefaultMaxKeyBytes+1)),
		raw("NUL in key", "/cache/a%00b"),
		raw("empty key", "/cache/"),
		raw("bad X-Is-Sync", "/cache/s1"),
		{name: "raw value too large", method: http.MethodPut, target: "/cache/big1", body: big,
			headers: []string{"Content-Type", "application/octet-stream"}, status: http.StatusRequestEntityTooLarge, code: CodeTooLarge},
		{name: "JSON value too large", method: http.MethodPut, target: "/cache/big2", body: `{"value":"` + big + `"}`,
			headers: []string{"Content-Type", jsonCT}, status: http.StatusRequestEntityTooLarge, code: CodeTooLarge},
		{name: "GET key too long", method: http.MethodGet, target: "/cache/" + strings.Repeat("k", DefaultMaxKeyBytes+1),
			status: http.StatusBadRequest, code: CodeBadRequest},
		{name: "DELETE NUL in key", method: http.MethodDelete, target: "/cache/a%00b", status: http.StatusBadRequest, code: CodeBadRequest},
		{name: "POST on a key", method: http.MethodPost, target: "/cache/m1", body: "v", status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed},
		{name: "PATCH on a key", method: http.MethodPatch, target: "/cache/m2", body: "v", status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed},
		{name: "PUT on the listing", method: http.MethodPut, target: "/cache", body: "v", status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed},
		{name: "limit not a number", method: http.MethodGet, target: "/cache?limit=ten", status: http.StatusBadRequest, code: CodeBadRequest},
		{name: "limit negative", method: http.MethodGet, target: "/cache?limit=-1", status: http.StatusBadRequest, code: CodeBadRequest},
		{name: "limit zero", method: http.MethodGet, target: "/cache?limit=0", status: http.StatusBadRequest, code: CodeBadRequest},
	}
}

// runBadInputs sends every bad request, then checks that the node still
// serves a PUT and a GET and that nothing the bad requests carried was
// stored.
func runBadInputs(t *testing.T, h http.Handler, cache Cache) {
	for _, c := range badInputs() {
		t.Run(c.name, func(t *testing.T) {
			headers := c.headers
			if c.name == "bad X-Is-Sync" {
				headers = append(headers, "X-Is-Sync", "yes please")
			}
			rec := do(t, h, c.method, c.target, strings.NewReader(c.body), headers...)
			wantError(t, rec, c.status, c.code)
			if c.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" {
				t.Fatal("405 without an Allow header")
			}
		})
	}

	rec := do(t, h, http.MethodPut, "/cache/good", strings.NewReader(`{"value":"still works","duration":"1h"}`), "Content-Type", jsonCT)
	wantStatus(t, rec.Code, http.StatusOK, rec.Body.Bytes())
	rec = do(t, h, http.MethodGet, "/cache/good", nil)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), []byte("still works")) || rec.Header().Get("X-Expires-At") == "" {
		t.Fatalf("GET after the bad requests: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if keys, next := cache.List("", "", 10000); len(keys) != 1 || keys[0] != "good" || next != "" {
		t.Fatalf("stored keys %q (next %q), want only \"good\"", keys, next)
	}
}

// TestBadInput runs the bad-input table against a real engine and node.
func TestBadInput(t *testing.T) {
	s, node := newRealServer(t)
	runBadInputs(t, s.Handler(), node)
}

// TestBadInputParsing runs the same table over the in-memory fake, so the
// parsing is checked even where the storage underneath changes.
func TestBadInputParsing(t *testing.T) {
	s, fc, _ := newFakeServer(t, nil)
	runBadInputs(t, s.Handler(), fc)
}
