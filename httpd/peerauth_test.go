package httpd

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPeerRoutesNeedASignature: with a peer verifier, every route under
// /internal/ answers 401 to a request it refuses, before any handler runs,
// and lets a signed one through; client tokens play no part there.
func TestPeerRoutesNeedASignature(t *testing.T) {
	reached := 0
	s := newGuardedServer(t, func(c *Config) {
		c.Peers = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			reached++
			w.WriteHeader(http.StatusNoContent)
		})
		c.VerifyPeer = func(r *http.Request) error {
			if r.Header.Get("X-Test-Signed") != "yes" {
				return errors.New("not signed")
			}
			return nil
		}
	})
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/internal/cluster/push"},
		{http.MethodPost, "/internal/cluster/tree"},
		{http.MethodPut, "/internal/shards/blob-1"},
		{http.MethodGet, "/internal/shards/"},
		{http.MethodDelete, "/internal/shards/blob-1/1/0"},
	} {
		for _, signed := range []bool{false, true} {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("x"))
			req.Header.Set("Authorization", "Bearer "+adminSecret) // a client's admin token is not a signature
			if signed {
				req.Header.Set("X-Test-Signed", "yes")
			}
			rec := httptest.NewRecorder()
			before := reached
			s.Handler().ServeHTTP(rec, req)
			switch {
			case !signed:
				wantError(t, rec, http.StatusUnauthorized, CodeUnauthorized)
				if reached != before {
					t.Fatalf("%s %s: an unsigned request reached the handler", tc.method, tc.path)
				}
			case rec.Code == http.StatusUnauthorized:
				t.Fatalf("%s %s: a signed request was refused: %s", tc.method, tc.path, rec.Body)
			}
		}
	}
}
