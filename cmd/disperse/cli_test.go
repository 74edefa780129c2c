package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCLIIsText: what get and blob get print to a terminal.
func TestCLIIsText(t *testing.T) {
	for _, tc := range []struct {
		ct   string
		b    string
		text bool
	}{
		{"text/plain; charset=utf-8", "hello\n", true},
		{"application/json", `{"a":1}`, true},
		{"application/vnd.x+json", `{}`, true},
		{"application/octet-stream", "plain words\tand tabs\n", true},
		{"", "plain", true},
		{"application/octet-stream", "bell\a", false},
		{"application/octet-stream", "\xff\xfe", false},
		{"text/plain", "\xff\xfe", false},
		{"image/png", "looks like text", false},
	} {
		if got := isText(tc.ct, []byte(tc.b)); got != tc.text {
			t.Errorf("isText(%q, %q) = %v", tc.ct, tc.b, got)
		}
	}
}

// TestCLISettingsPrecedence: flag, then variable, then the selected
// context, then the default.
func TestCLISettingsPrecedence(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	t.Setenv("DISPERSE_CONFIG", cfgPath)
	err := saveConfig(cfgPath, &configFile{Current: "a", Contexts: map[string]*contextEntry{
		"a": {Addr: "http://a:1", Token: "token-a"},
		"b": {Addr: "http://b:1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(args ...string) connSettings {
		t.Helper()
		p, c, err := newParser(io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		kctx, err := p.Parse(append([]string{"members"}, args...))
		if err != nil {
			t.Fatal(err)
		}
		e := &env{g: &c.globals, kctx: kctx}
		if err := e.resolve(); err != nil {
			t.Fatal(err)
		}
		return e.conn
	}
	// A variable set, even empty, counts as given.
	for _, v := range []string{"DISPERSE_ADDR", "DISPERSE_TOKEN", "DISPERSE_CACERT", "DISPERSE_CERT", "DISPERSE_KEY", "DISPERSE_CONTEXT", "HTTP_PORT"} {
		unsetenv(t, v)
	}
	if c := resolve(); c.addr != "http://a:1" || c.token != "token-a" || c.context != "a" {
		t.Errorf("current context: %+v", c)
	}
	if c := resolve("--context", "b"); c.addr != "http://b:1" || c.token != "" {
		t.Errorf("--context b: %+v", c)
	}
	t.Setenv("DISPERSE_ADDR", "http://env:1")
	if c := resolve(); c.addr != "http://env:1" || c.token != "" {
		t.Errorf("variable over context: %+v, want no token: the context's goes only to its node", c)
	}
	if c := resolve("--addr", "a:1"); c.addr != "a:1" || c.token != "token-a" {
		t.Errorf("--addr naming the context's node: %+v, want its token", c)
	}
	if c := resolve("--addr", "http://flag:1", "--token", ""); c.addr != "http://flag:1" || c.token != "" {
		t.Errorf("flags over variable and context: %+v", c)
	}
	unsetenv(t, "DISPERSE_ADDR")
	if err := saveConfig(cfgPath, &configFile{}); err != nil {
		t.Fatal(err)
	}
	if c := resolve(); c.addr != "http://127.0.0.1:8000" {
		t.Errorf("default: %+v", c)
	}
	t.Setenv("HTTP_PORT", "9123")
	if c := resolve(); c.addr != "http://127.0.0.1:9123" {
		t.Errorf("default from HTTP_PORT: %+v", c)
	}
}

// unsetenv removes variable v for the rest of the test (t.Setenv restores
// it afterwards).
func unsetenv(t *testing.T, v string) {
	t.Helper()
	t.Setenv(v, "")
	if err := os.Unsetenv(v); err != nil {
		t.Fatal(err)
	}
}
