package httpd

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/disperse/disperse/blob"
	"github.com/disperse/disperse/engine"
)

// Secrets of the test tokens, one per scope.
const (
	readSecret  = "read-secret-0123456789"
	writeSecret = "write-secret-0123456789"
	adminSecret = "admin-secret-0123456789"
	wrongSecret = "wrong-secret-0123456789"
)

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	tokens, err := NewTokens([]Token{
		{Name: "reader", Scope: ScopeRead, Secret: readSecret},
		{Name: "writer", Scope: ScopeWrite, Secret: writeSecret},
		{Name: "ops", Scope: ScopeAdmin, Secret: adminSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// stubBlobs stands in for the blob store in the routing tests. It has no
// store underneath: every method but ShardHandler panics, which the
// server's recovery answers 500 internal, so a 500 from a /blob route
// proves the request got past the guard to the blob handler.
type stubBlobs struct{ Blobs }

func (stubBlobs) ShardHandler() http.Handler { return noContent }

// noContent stands in for the node-to-node handlers: 204 to anything.
var noContent = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
})

// newGuardedServer is a server over a fake cache holding key "k", a stub
// blob store and stub peer routes, with the test tokens.
func newGuardedServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	s, fc, _ := newFakeServer(t, func(c *Config) {
		c.Tokens = testTokens(t)
		c.Blobs = stubBlobs{}
		c.Peers = noContent
		if mod != nil {
			mod(c)
		}
	})
	fc.entries["k"] = engine.Entry{Key: "k", Value: []byte("v"), Version: engine.Version{Time: 1 << 16, Node: 7}}
	return s
}

// routeCase is one request on one route: the scope it needs and how the
// handler answers once the guard lets it through.
type routeCase struct {
	route        string // the gin route template it exercises ("" for none)
	method, path string
	body         string
	need         access
	status       int    // the handler's answer
	code         string // its error code, "" for a success
}

func routeCases() []routeCase {
	return []routeCase{
		{"/cache", http.MethodGet, "/cache?prefix=k", "", accessRead, 200, ""},
		{"/cache/*key", http.MethodGet, "/cache/k", "", accessRead, 200, ""},
		{"/cache/*key", http.MethodHead, "/cache/k", "", accessRead, 200, ""},
		{"/cache/*key", http.MethodPut, "/cache/k", "v2", accessWrite, 200, ""},
		{"/cache/*key", http.MethodDelete, "/cache/k", "", accessWrite, 204, ""},
		{"/healthz", http.MethodGet, "/healthz", "", accessOpen, 200, ""},
		{"/readyz", http.MethodGet, "/readyz", "", accessOpen, 200, ""},
		{"/metrics", http.MethodGet, "/metrics", "", accessAdmin, 200, ""},
		{"/cluster/members", http.MethodGet, "/cluster/members", "", accessAdmin, 200, ""},
		{"/blob", http.MethodGet, "/blob", "", accessRead, 500, CodeInternal},
		{"/blob/*path", http.MethodGet, "/blob/b1", "", accessRead, 500, CodeInternal},
		{"/blob/*path", http.MethodGet, "/blob/b1/manifest", "", accessRead, 500, CodeInternal},
		{"/blob/*path", http.MethodHead, "/blob/b1", "", accessRead, 500, CodeInternal},
		{"/blob/*path", http.MethodPut, "/blob/b1", "data", accessWrite, 500, CodeInternal},
		{"/blob/*path", http.MethodDelete, "/blob/b1", "", accessWrite, 500, CodeInternal},
		{blob.ShardPathPrefix + "*path", http.MethodGet, blob.ShardPathPrefix + "b1", "", accessPeer, 204, ""},
		{blob.ShardPathPrefix + "*path", http.MethodPut, blob.ShardPathPrefix + "b1", "shard", accessPeer, 204, ""},
		{blob.ShardPathPrefix + "*path", http.MethodDelete, blob.ShardPathPrefix + "b1", "", accessPeer, 204, ""},
		{"/internal/cluster/:op", http.MethodPost, "/internal/cluster/push", "x", accessPeer, 204, ""},
		// No route: a stranger learns nothing, a client with a token gets
		// the router's answer.
		{"", http.MethodGet, "/nope", "", accessRead, 404, CodeNotFound},
		{"", http.MethodPost, "/cache/k", "v", accessWrite, 405, CodeMethodNotAllowed},
		{"", http.MethodDelete, "/cache", "", accessWrite, 405, CodeMethodNotAllowed},
		{"", http.MethodPost, "/cluster/members", "", accessAdmin, 405, CodeMethodNotAllowed},
		{"", http.MethodGet, "/cluster/nope", "", accessAdmin, 404, CodeNotFound},
	}
}

// credential is one way a client presents itself.
type credential struct {
	name   string
	header string // the Authorization header, "" for none
	scope  string // the scope it carries, "" for none
}

var credentials = []credential{
	{"no token", "", ""},
	{"wrong token", "Bearer " + wrongSecret, ""},
	{"read", "Bearer " + readSecret, ScopeRead},
	{"write", "Bearer " + writeSecret, ScopeWrite},
	{"admin", "Bearer " + adminSecret, ScopeAdmin},
}

// expect is the answer to c's request presented with cred.
func (c routeCase) expect(cred credential) (int, string) {
	switch {
	case c.need == accessOpen || c.need == accessPeer:
		return c.status, c.code
	case cred.scope == "":
		return http.StatusUnauthorized, CodeUnauthorized
	case !ScopeAllows(cred.scope, c.need.scope()):
		return http.StatusForbidden, CodeForbidden
	}
	return c.status, c.code
}

// TestAuthEveryRoute sends every route every credential through the real
// router and checks the exact status and code.
func TestAuthEveryRoute(t *testing.T) {
	s := newGuardedServer(t, nil)
	h := s.Handler()
	covered := map[string]bool{}
	for _, rc := range routeCases() {
		covered[rc.method+" "+rc.route] = true
		for _, cred := range credentials {
			t.Run(rc.method+" "+rc.path+"/"+cred.name, func(t *testing.T) {
				var headers []string
				if cred.header != "" {
					headers = []string{"Authorization", cred.header}
				}
				rec := do(t, h, rc.method, rc.path, strings.NewReader(rc.body), headers...)
				status, code := rc.expect(cred)
				checkAnswer(t, rec, rc.method, status, code)
				if status == http.StatusUnauthorized {
					wantBearerChallenge(t, rec, cred.header != "")
				}
			})
		}
	}
	// Every route the router has is in the table, for the methods it
	// serves (Any routes: the three the table names).
	for _, r := range s.engine.Routes() {
		if strings.HasPrefix(r.Path, blob.ShardPathPrefix) && !covered[r.Method+" "+r.Path] {
			continue
		}
		if !covered[r.Method+" "+r.Path] {
			t.Errorf("route %s %s is not in the access table", r.Method, r.Path)
		}
	}
}

// checkAnswer checks an answer's status and, for an error, its JSON code
// (HEAD answers carry no body).
func checkAnswer(t testing.TB, rec *httptest.ResponseRecorder, method string, status int, code string) {
	t.Helper()
	if code == "" || method == http.MethodHead {
		if rec.Code != status {
			t.Fatalf("status %d, want %d (body %q)", rec.Code, status, rec.Body)
		}
		return
	}
	wantError(t, rec, status, code)
}

// wantBearerChallenge checks the WWW-Authenticate header of a 401.
func wantBearerChallenge(t testing.TB, rec *httptest.ResponseRecorder, invalid bool) {
	t.Helper()
	got := rec.Header().Get("WWW-Authenticate")
	if !strings.HasPrefix(got, "Bearer ") {
		t.Fatalf("WWW-Authenticate %q, want a Bearer challenge", got)
	}
	if invalid != strings.Contains(got, `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q: invalid_token only for a token that was sent", got)
	}
}

// TestAuthMetricsPublic: --metrics-public opens /metrics and nothing else.
func TestAuthMetricsPublic(t *testing.T) {
	s := newGuardedServer(t, func(c *Config) { c.MetricsPublic = true })
	h := s.Handler()
	if rec := do(t, h, http.MethodGet, "/metrics", nil); rec.Code != http.StatusOK {
		t.Fatalf("/metrics without a token: %d", rec.Code)
	}
	wantError(t, do(t, h, http.MethodGet, "/cluster/members", nil), http.StatusUnauthorized, CodeUnauthorized)
	wantError(t, do(t, h, http.MethodGet, "/cache/k", nil), http.StatusUnauthorized, CodeUnauthorized)
}

// TestAuthOffWithoutTokens: a server without tokens asks for none.
func TestAuthOffWithoutTokens(t *testing.T) {
	s := newGuardedServer(t, func(c *Config) { c.Tokens = nil })
	h := s.Handler()
	for _, rc := range routeCases() {
		rec := do(t, h, rc.method, rc.path, strings.NewReader(rc.body), "Authorization", "Bearer "+wrongSecret)
		checkAnswer(t, rec, rc.method, rc.status, rc.code)
	}
}

// TestAuthHeaderForms: the scheme is case-insensitive; anything but a
// bearer token is no token.
func TestAuthHeaderForms(t *testing.T) {
	h := newGuardedServer(t, nil).Handler()
	for _, hdr := range []string{"bearer " + readSecret, "BEARER " + readSecret, "Bearer  " + readSecret + " "} {
		if rec := do(t, h, http.MethodGet, "/cache/k", nil, "Authorization", hdr); rec.Code != http.StatusOK {
			t.Errorf("Authorization %q: %d", hdr, rec.Code)
		}
	}
	for _, hdr := range []string{readSecret, "Basic " + readSecret, "Bearer", "Bearer ", "Bearer " + readSecret[:len(readSecret)-1],
		"Bearer " + readSecret + "x", "Bearer " + strings.ToUpper(readSecret)} {
		rec := do(t, h, http.MethodGet, "/cache/k", nil, "Authorization", hdr)
		wantError(t, rec, http.StatusUnauthorized, CodeUnauthorized)
	}
}

// TestAuthRejectionsCounted: 401, 403 and 429 are counted by code.
func TestAuthRejectionsCounted(t *testing.T) {
	s, _, reg := newFakeServer(t, func(c *Config) { c.Tokens = testTokens(t); c.RateLimit = 1; c.RateBurst = 1 })
	h := s.Handler()
	do(t, h, http.MethodGet, "/cache/k", nil)                                                           // 401
	do(t, h, http.MethodPut, "/cache/k", strings.NewReader("v"), "Authorization", "Bearer "+readSecret) // 403
	do(t, h, http.MethodGet, "/cache/k", nil, "Authorization", "Bearer "+readSecret)                    // 429: reader's one request is spent
	want := map[string]float64{CodeUnauthorized: 1, CodeForbidden: 1, CodeRateLimited: 1}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "disperse_http_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	for code, n := range want {
		if got[code] != n {
			t.Errorf("rejected{code=%q} = %v, want %v (all: %v)", code, got[code], n, got)
		}
	}
}

func TestScopeAllows(t *testing.T) {
	for _, c := range []struct {
		have, need string
		ok         bool
	}{
		{ScopeRead, ScopeRead, true}, {ScopeRead, ScopeWrite, false}, {ScopeRead, ScopeAdmin, false},
		{ScopeWrite, ScopeRead, true}, {ScopeWrite, ScopeWrite, true}, {ScopeWrite, ScopeAdmin, false},
		{ScopeAdmin, ScopeRead, true}, {ScopeAdmin, ScopeWrite, true}, {ScopeAdmin, ScopeAdmin, true},
		{"", ScopeRead, false}, {"root", ScopeRead, false}, {ScopeAdmin, "", false}, {ScopeAdmin, "root", false},
	} {
		if got := ScopeAllows(c.have, c.need); got != c.ok {
			t.Errorf("ScopeAllows(%q, %q) = %v", c.have, c.need, got)
		}
	}
}

func TestTokensAuthenticate(t *testing.T) {
	tokens := testTokens(t)
	for secret, want := range map[string]string{readSecret: ScopeRead, writeSecret: ScopeWrite, adminSecret: ScopeAdmin} {
		if scope, ok := tokens.Authenticate(secret); !ok || scope != want {
			t.Errorf("Authenticate(%q) = %q, %v; want %q", secret, scope, ok, want)
		}
	}
	for _, secret := range []string{"", wrongSecret, readSecret + " ", readSecret[1:]} {
		if scope, ok := tokens.Authenticate(secret); ok || scope != "" {
			t.Errorf("Authenticate(%q) = %q, %v; want nothing", secret, scope, ok)
		}
	}
	var f func(string) (string, bool) = tokens.Authenticate // the Redis port's hook
	_ = f
}

func TestParseTokens(t *testing.T) {
	const file = `# the node's tokens
app      write  ` + writeSecret + `

	dash read ` + readSecret + `   
  # indented comment
ops admin ` + adminSecret + "\r\n"
	list, err := ParseTokens(strings.NewReader(file), "tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{{"app", ScopeWrite, writeSecret}, {"dash", ScopeRead, readSecret}, {"ops", ScopeAdmin, adminSecret}}
	if len(list) != len(want) {
		t.Fatalf("got %v", list)
	}
	for i := range want {
		if list[i] != want[i] {
			t.Errorf("token %d = %+v, want %+v", i, list[i], want[i])
		}
	}
}

func TestParseTokensErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"a read " + readSecret + "\nb\n", "tokens.txt line 2: want three fields (name scope token), found 1"},
		{"\n\na read " + readSecret + " extra\n", "tokens.txt line 3: want three fields (name scope token), found 4"},
		{"# c\na reader " + readSecret + "\n", `tokens.txt line 2: token "a": scope "reader" is not read, write or admin`},
		{"a read short\n", `tokens.txt line 1: token "a" is 5 characters, fewer than the 16 required (make one with: openssl rand -hex 32)`},
		{"a read " + readSecret + "\x01\n", `tokens.txt line 1: token "a" has a character that is not printable ASCII, or a space`},
		{"# only comments\n\n", "tokens.txt: no token in the file"},
	} {
		_, err := ParseTokens(strings.NewReader(c.file), "tokens.txt")
		if err == nil || err.Error() != c.want {
			t.Errorf("file %q: error %v, want %s", c.file, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), readSecret) {
			t.Errorf("error %q shows the secret", err)
		}
	}
}

func TestNewTokensErrors(t *testing.T) {
	for _, c := range []struct {
		list []Token
		want string
	}{
		{[]Token{{"a", ScopeRead, readSecret}, {"a", ScopeWrite, writeSecret}}, `token name "a" is given twice`},
		{[]Token{{"a", ScopeRead, readSecret}, {"b", ScopeWrite, readSecret}}, `tokens "a" and "b" have the same secret`},
		{[]Token{{"", ScopeRead, readSecret}}, "a token has no name"},
		{[]Token{{"a b", ScopeRead, readSecret}}, `token name "a b" contains white space or a control character`},
	} {
		_, err := NewTokens(c.list)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v, want %s", c.list, err, c.want)
		}
	}
}

// BenchmarkGuardToken is the cost the guard adds to a GET with a token.
func BenchmarkGuardToken(b *testing.B) {
	s := newGuardedServer(b, nil)
	req := httptest.NewRequest(http.MethodGet, "/cache/k", nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	b.ReportAllocs()
	for b.Loop() {
		if s.accessOf(req.Method, req.URL.Path) != accessRead {
			b.Fatal("access")
		}
		secret, _ := bearer(req.Header.Get("Authorization"))
		if s.tokens.lookup(secret) == nil {
			b.Fatal("lookup")
		}
	}
}
