package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/disperse/disperse/client"
	"github.com/disperse/disperse/internal/fsutil"
)

// configFile is the client's config file: named contexts, each a node
// address with its credentials, and the one in use.
//
//	{"current": "prod",
//	 "contexts": {"prod": {"addr": "https://node1:8000", "token": "...", "cacert": "/etc/ca.pem"}}}
type configFile struct {
	Current  string                   `json:"current,omitempty"`
	Contexts map[string]*contextEntry `json:"contexts"`
}

// contextEntry is one named context. Empty fields are not set.
type contextEntry struct {
	Addr   string `json:"addr,omitempty"`
	Token  string `json:"token,omitempty"`
	CACert string `json:"cacert,omitempty"`
	Cert   string `json:"cert,omitempty"`
	Key    string `json:"key,omitempty"`
}

// connSettings are the connection settings a command uses.
type connSettings struct {
	addr, token, cacert, cert, key string
	context                        string // the context they came from, if any
}

// configPath is the config file: --config (or DISPERSE_CONFIG), else
// $XDG_CONFIG_HOME/disperse/config.json, else
// ~/.config/disperse/config.json.
func (g *globals) configPath() (string, error) {
	if g.Config.set && g.Config.v != "" {
		return g.Config.v, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "disperse", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the config file: %w (set --config or DISPERSE_CONFIG)", err)
	}
	return filepath.Join(home, ".config", "disperse", "config.json"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func loadConfig(path string) (*configFile, error) {
	cfg := &configFile{Contexts: map[string]*contextEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]*contextEntry{}
	}
	for name, c := range cfg.Contexts {
		if c == nil {
			cfg.Contexts[name] = &contextEntry{}
		}
	}
	return cfg, nil
}

// saveConfig writes cfg to path, readable by its owner only, crash-safely
// (writeFileAtomic).
func saveConfig(path string, cfg *configFile) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config dir: %w", err)
	}
	if err := writeFileAtomic(path, bytes.NewReader(append(b, '\n')), 0o600); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return nil
}

// writeFileAtomic writes the bytes of r to path through a temporary file
// in the same directory (path.partial-*), synced, given perm and renamed
// over path once complete, then syncs the directory: a failed write
// leaves nothing under path, and a crash leaves the old file or the new.
func writeFileAtomic(path string, r io.Reader, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".partial-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// resolve works out the connection settings, each from the first of: its
// flag, its environment variable (kong reads both into the globals), the
// selected context, the default.
func (e *env) resolve() error {
	g := e.g
	var ctx *contextEntry
	path, err := g.configPath()
	if err != nil && g.Context.set {
		return err
	}
	if err == nil {
		cfg, err := loadConfig(path)
		if err != nil {
			return err
		}
		name := cfg.Current
		if g.Context.set {
			name = g.Context.v
		}
		if name != "" {
			if ctx = cfg.Contexts[name]; ctx == nil {
				return usageErrorf("no context %q in %s (disperse context ls)", name, path)
			}
			e.conn.context = name
		}
	}
	if ctx == nil {
		ctx = &contextEntry{}
	}
	// A context's credentials go only to its own node: an address given as
	// a flag or variable that names another node takes none of them.
	if g.Addr.set && ctx.Addr != "" && !sameNode(g.Addr.v, ctx.Addr) {
		ctx = &contextEntry{}
	}
	pick := func(o optString, fromContext, def string) string {
		switch {
		case o.set:
			return o.v
		case fromContext != "":
			return fromContext
		}
		return def
	}
	e.conn.addr = pick(g.Addr, ctx.Addr, defaultAddr())
	e.conn.token = pick(g.Token, ctx.Token, "")
	e.conn.cacert = pick(g.CACert, ctx.CACert, "")
	e.conn.cert = pick(g.Cert, ctx.Cert, "")
	e.conn.key = pick(g.Key, ctx.Key, "")
	return nil
}

// sameNode reports whether two addresses name the same node, as the
// client reads them (host:port alone is http).
func sameNode(a, b string) bool {
	ua, erra := client.BaseURL(a)
	ub, errb := client.BaseURL(b)
	return erra == nil && errb == nil && ua == ub
}

// defaultAddr is the node on this machine: the HTTP port of HTTP_PORT (the
// node's own setting) or 8000.
func defaultAddr() string {
	if p := os.Getenv("HTTP_PORT"); p != "" {
		return "http://127.0.0.1:" + p
	}
	return "http://127.0.0.1:8000"
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// contextCmd manages the config file's contexts.
type contextCmd struct {
	Set contextSetCmd `cmd:"" help:"Create or update context NAME from --addr, --token, --cacert, --cert and --key given on the command line; the first context made becomes the current one."`
	Use contextUseCmd `cmd:"" help:"Make NAME the current context."`
	Ls  contextLsCmd  `cmd:"" help:"List the contexts; * marks the current one. Tokens are not shown."`
	Rm  contextRmCmd  `cmd:"" help:"Remove context NAME."`
}

type contextSetCmd struct {
	Name string `arg:"" help:"Context name."`
}

// Run takes only the connection flags written on this command line:
// variables such as DISPERSE_ADDR are not saved by accident.
func (c *contextSetCmd) Run(e *env) error {
	if strings.TrimSpace(c.Name) == "" {
		return usageErrorf("empty context name")
	}
	path, cfg, err := e.config()
	if err != nil {
		return err
	}
	entry := cfg.Contexts[c.Name]
	isNew := entry == nil
	if isNew {
		entry = &contextEntry{}
	}
	given := 0
	for _, p := range e.kctx.Path {
		if p.Flag == nil {
			continue
		}
		o, ok := p.Flag.Target.Interface().(optString)
		if !ok {
			continue
		}
		v := o.v
		switch p.Flag.Name {
		case "addr":
			entry.Addr = v
		case "token":
			entry.Token = v
		case "cacert":
			entry.CACert = absPath(v)
		case "cert":
			entry.Cert = absPath(v)
		case "key":
			entry.Key = absPath(v)
		default:
			continue
		}
		given++
	}
	if isNew && entry.Addr == "" {
		return usageErrorf("a new context needs --addr")
	}
	if given == 0 {
		return usageErrorf("nothing to set: give --addr, --token, --cacert, --cert or --key")
	}
	cfg.Contexts[c.Name] = entry
	if cfg.Current == "" {
		cfg.Current = c.Name
	}
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	if e.g.JSON {
		return writeJSON(e.stdout, map[string]any{"context": c.Name, "current": cfg.Current == c.Name, "file": path})
	}
	return nil
}

// absPath makes a file name given relative to the working directory
// usable from anywhere.
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// config loads the config file of the command line.
func (e *env) config() (string, *configFile, error) {
	path, err := e.g.configPath()
	if err != nil {
		return "", nil, err
	}
	cfg, err := loadConfig(path)
	return path, cfg, err
}

type contextUseCmd struct {
	Name string `arg:"" help:"Context name."`
}

func (c *contextUseCmd) Run(e *env) error {
	path, cfg, err := e.config()
	if err != nil {
		return err
	}
	if cfg.Contexts[c.Name] == nil {
		return usageErrorf("no context %q in %s", c.Name, path)
	}
	cfg.Current = c.Name
	return saveConfig(path, cfg)
}

type contextRmCmd struct {
	Name string `arg:"" help:"Context name."`
}

func (c *contextRmCmd) Run(e *env) error {
	path, cfg, err := e.config()
	if err != nil {
		return err
	}
	if cfg.Contexts[c.Name] == nil {
		return usageErrorf("no context %q in %s", c.Name, path)
	}
	delete(cfg.Contexts, c.Name)
	if cfg.Current == c.Name {
		cfg.Current = ""
	}
	return saveConfig(path, cfg)
}

type contextLsCmd struct{}

// contextView is a context as ls shows it: no secret.
type contextView struct {
	Name     string `json:"name"`
	Current  bool   `json:"current"`
	Addr     string `json:"addr"`
	HasToken bool   `json:"token_set"`
	CACert   string `json:"cacert,omitempty"`
	Cert     string `json:"cert,omitempty"`
	Key      string `json:"key,omitempty"`
}

func (c *contextLsCmd) Run(e *env) error {
	_, cfg, err := e.config()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(cfg.Contexts))
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	slices.Sort(names)
	views := make([]contextView, 0, len(names))
	for _, n := range names {
		x := cfg.Contexts[n]
		views = append(views, contextView{Name: n, Current: n == cfg.Current, Addr: x.Addr, HasToken: x.Token != "",
			CACert: x.CACert, Cert: x.Cert, Key: x.Key})
	}
	if e.g.JSON {
		return writeJSON(e.stdout, views)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CURRENT\tNAME\tADDR\tTOKEN\tCACERT")
	for _, v := range views {
		cur, tok := "", ""
		if v.Current {
			cur = "*"
		}
		if v.HasToken {
			tok = "set"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, v.Name, v.Addr, tok, v.CACert)
	}
	return tw.Flush()
}
