package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/disperse/disperse/client"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// isText reports whether a value of content type ct with bytes b can be
// shown on a terminal: a textual type, or, for an untyped or generic one,
// UTF-8 without control characters other than white space.
func isText(ct string, b []byte) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case strings.HasPrefix(mt, "text/"), mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"), mt == "application/x-ndjson":
		return utf8.Valid(b)
	case mt != "" && mt != "application/octet-stream":
		return false
	}
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// getCmd is `disperse get KEY`.
type getCmd struct {
	Key    string `arg:"" help:"The key."`
	Output string `short:"o" help:"Write the value to FILE (- for standard output) instead of printing it." placeholder:"FILE"`
	Force  bool   `help:"Print a binary value to a terminal anyway."`
}

// getJSON is get's --json answer: the value as a string when it is UTF-8,
// else in base64.
type getJSON struct {
	Key         string     `json:"key"`
	Value       *string    `json:"value,omitempty"`
	ValueBase64 *string    `json:"value_base64,omitempty"`
	ContentType string     `json:"content_type"`
	Version     string     `json:"version"`
	ExpiresAt   *time.Time `json:"expires_at"`
	File        string     `json:"file,omitempty"`
}

func (c *getCmd) Run(e *env) error {
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	ent, err := cl.Get(ctx, c.Key)
	if err != nil {
		return keyError(c.Key, err)
	}
	if c.Output != "" && c.Output != "-" {
		if err := writeFileAtomic(c.Output, bytes.NewReader(ent.Value), 0o644); err != nil {
			return err
		}
	}
	if e.g.JSON {
		out := getJSON{Key: ent.Key, ContentType: ent.ContentType, Version: ent.Version, ExpiresAt: timeOrNil(ent.ExpiresAt)}
		switch {
		case c.Output != "" && c.Output != "-":
			out.File = c.Output
		case utf8.Valid(ent.Value):
			v := string(ent.Value)
			out.Value = &v
		default:
			v := base64.StdEncoding.EncodeToString(ent.Value)
			out.ValueBase64 = &v
		}
		return writeJSON(e.stdout, out)
	}
	if c.Output != "" && c.Output != "-" {
		return nil
	}
	tty := isTerminal(e.stdout)
	if tty && !c.Force && c.Output == "" && !isText(ent.ContentType, ent.Value) {
		return usageErrorf("key %q holds %d bytes of %s, not text: not printed to a terminal (use -o FILE or --force)", c.Key, len(ent.Value), ent.ContentType)
	}
	if _, err := e.stdout.Write(ent.Value); err != nil {
		return err
	}
	if tty && !bytes.HasSuffix(ent.Value, []byte("\n")) {
		_, err = io.WriteString(e.stdout, "\n")
	}
	return err
}

// keyError names the key in a request's error: `key "k": key not found
// (404 not_found)`.
func keyError(key string, err error) error {
	return fmt.Errorf("key %q: %w", key, err)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// putCmd is `disperse put KEY [VALUE|-]`.
type putCmd struct {
	Key         string        `arg:"" help:"The key."`
	Value       *string       `arg:"" optional:"" help:"The value; - or nothing reads it from standard input."`
	TTL         time.Duration `name:"ttl" help:"Expire the value after this long (e.g. 90s, 1h); 0: never."`
	ContentType string        `help:"Content type kept with the value (default text/plain; charset=utf-8 for a VALUE argument, else sniffed from the bytes)." placeholder:"TYPE"`
	IfMatch     string        `help:"Write only if the key's version is VERSION (* : only if it exists)." placeholder:"VERSION"`
	IfNoneMatch string        `help:"Write only if the key's version is not VERSION (* : only if it is absent)." placeholder:"VERSION"`
	Sync        bool          `help:"Apply on the answering node only (X-Is-Sync: true); never sent to peers."`
}

func (c *putCmd) Run(e *env) error {
	if c.TTL < 0 {
		return usageErrorf("--ttl must not be negative")
	}
	var value []byte
	ct := c.ContentType
	if c.Value == nil || *c.Value == "-" {
		if isTerminal(e.stdin) {
			fmt.Fprintln(e.stderr, "reading the value from the terminal; end it with Ctrl-D")
		}
		var err error
		if value, err = io.ReadAll(e.stdin); err != nil {
			return fmt.Errorf("reading the value from standard input: %w", err)
		}
		if ct == "" {
			ct = http.DetectContentType(value)
		}
	} else {
		value = []byte(*c.Value)
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
	}
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	res, err := cl.Put(ctx, c.Key, value, &client.PutOptions{TTL: c.TTL, ContentType: ct,
		IfMatch: c.IfMatch, IfNoneMatch: c.IfNoneMatch, NodeLocal: c.Sync})
	if err != nil {
		return keyError(c.Key, err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, res)
	}
	return nil
}

// delCmd is `disperse del KEY`.
type delCmd struct {
	Key     string `arg:"" help:"The key."`
	IfMatch string `help:"Delete only if the key's version is VERSION (* : only if it exists)." placeholder:"VERSION"`
	Sync    bool   `help:"Delete on the answering node only (X-Is-Sync: true)."`
}

func (c *delCmd) Run(e *env) error {
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	if err := cl.Delete(ctx, c.Key, &client.DeleteOptions{IfMatch: c.IfMatch, NodeLocal: c.Sync}); err != nil {
		return keyError(c.Key, err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, map[string]any{"key": c.Key, "deleted": true})
	}
	return nil
}

// ttlCmd is `disperse ttl KEY`.
type ttlCmd struct {
	Key string `arg:"" help:"The key."`
}

func (c *ttlCmd) Run(e *env) error {
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	ent, err := cl.Head(ctx, c.Key)
	if err != nil {
		return keyError(c.Key, err)
	}
	if ent.ExpiresAt.IsZero() {
		if e.g.JSON {
			return writeJSON(e.stdout, map[string]any{"key": c.Key, "expires_at": nil, "ttl_seconds": nil})
		}
		_, err = fmt.Fprintln(e.stdout, "no expiry")
		return err
	}
	left := max(time.Until(ent.ExpiresAt), 0)
	if e.g.JSON {
		return writeJSON(e.stdout, map[string]any{"key": c.Key, "expires_at": ent.ExpiresAt, "ttl_seconds": int64(left.Round(time.Second) / time.Second)})
	}
	_, err = fmt.Fprintf(e.stdout, "%s (expires at %s)\n", left.Round(time.Second), ent.ExpiresAt.UTC().Format(time.RFC3339))
	return err
}

// lsCmd is `disperse ls [PREFIX]`.
type lsCmd struct {
	Prefix string `arg:"" optional:"" help:"List only keys that start with PREFIX."`
	Limit  int    `help:"List at most N keys (0: all, fetched page by page)." placeholder:"N"`
	After  string `help:"Start after this key." placeholder:"KEY"`
}

func (c *lsCmd) Run(e *env) error {
	if c.Limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	out := newListWriter(e.stdout, e.g.JSON, "keys")
	n := 0
	after := c.After
	for c.Limit == 0 || n < c.Limit {
		size := 1000
		if c.Limit > 0 {
			size = min(size, c.Limit-n)
		}
		page, err := cl.List(ctx, c.Prefix, after, size)
		if err != nil {
			out.abort()
			return err
		}
		for _, k := range page.Keys {
			if err := out.item(k, k); err != nil {
				return err
			}
			n++
		}
		if page.Next == "" || page.Next == after || len(page.Keys) == 0 {
			after = ""
			break
		}
		after = page.Next
	}
	return out.close(after)
}

// listWriter prints a listing as it comes: a line per item, or with --json
// one object {"NAME": [...], "next": "..."} written item by item, so a long
// listing is never held whole.
type listWriter struct {
	w     io.Writer
	json  bool
	name  string
	count int
	err   error
}

func newListWriter(w io.Writer, asJSON bool, name string) *listWriter {
	return &listWriter{w: w, json: asJSON, name: name}
}

// item prints one item: line in text, v in JSON.
func (l *listWriter) item(line string, v any) error {
	if l.err != nil {
		return l.err
	}
	if !l.json {
		_, l.err = fmt.Fprintln(l.w, line)
		return l.err
	}
	var b bytes.Buffer
	if l.count == 0 {
		fmt.Fprintf(&b, "{%q:[", l.name)
	} else {
		b.WriteByte(',')
	}
	if err := writeJSON(&b, v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // the encoder's newline
	l.count++
	_, l.err = l.w.Write(b.Bytes())
	return l.err
}

// close ends the listing; next is where a further listing would start.
func (l *listWriter) close(next string) error {
	if l.err != nil || !l.json {
		return l.err
	}
	if l.count == 0 {
		fmt.Fprintf(l.w, "{%q:[", l.name)
	}
	_, err := fmt.Fprintf(l.w, "],\"next\":%q}\n", next)
	return err
}

// abort ends a JSON listing cut by an error so that the output stays one
// line (the error follows on stderr).
func (l *listWriter) abort() {
	if l.json && l.count > 0 {
		fmt.Fprintln(l.w, "]}")
	}
}

// membersCmd is `disperse members`.
type membersCmd struct{}

func (c *membersCmd) Run(e *env) error {
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	ms, err := cl.Members(ctx)
	if err != nil {
		return err
	}
	if e.g.JSON {
		return writeJSON(e.stdout, ms)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tGOSSIP\tHTTP")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\n", m.Name, m.State, m.Addr, m.GossipPort, m.HTTPAddr)
	}
	return tw.Flush()
}

// readyCmd is `disperse ready`.
type readyCmd struct{}

func (c *readyCmd) Run(e *env) error {
	cl, err := e.client()
	if err != nil {
		return err
	}
	sctx, cancel := e.ctx()
	defer cancel()
	ctx := sctx
	if e.g.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(sctx, e.g.Timeout)
		defer stop()
	}
	if err := cl.Ready(ctx); err != nil {
		var nr *client.NotReadyError
		if errors.As(err, &nr) && errors.Is(nr.Err, context.DeadlineExceeded) {
			if nr.Last != nil {
				return fmt.Errorf("%s not ready after %s (last: %v)", cl.Addr(), e.g.Timeout, nr.Last)
			}
			return fmt.Errorf("%s not ready after %s", cl.Addr(), e.g.Timeout)
		}
		return fmt.Errorf("%s: %w", cl.Addr(), err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, map[string]any{"addr": cl.Addr(), "ready": true})
	}
	return nil
}

// completionCmd is `disperse completion bash|zsh|fish`. The script makes
// the shell ask the binary itself (with COMP_LINE set) for completions, so
// they always match the binary's commands and flags.
type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

func (c *completionCmd) Run(e *env) error {
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	var script string
	switch c.Shell {
	case "bash":
		script = fmt.Sprintf("complete -C %s disperse\n", shellQuote(bin))
	case "zsh":
		script = fmt.Sprintf("autoload -U +X bashcompinit && bashcompinit\ncomplete -C %s disperse\n", shellQuote(bin))
	case "fish":
		script = fmt.Sprintf(`function __disperse_complete
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    %s
end
complete -f -c disperse -a "(__disperse_complete)"
`, shellQuote(bin))
	}
	_, err = io.WriteString(e.stdout, script)
	return err
}

// shellQuote quotes s for a POSIX shell (and fish) when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
