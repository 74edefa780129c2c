package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/disperse/disperse/client"
	"github.com/willabides/kongplete"
)

// cli is the command line of the client commands, parsed by kong. serve,
// bench and version have parsers of their own (mainArgs runs them before
// kong); they are in the model so that help and completion list them.
type cli struct {
	globals

	Get     getCmd     `cmd:"" help:"Print the value of KEY."`
	Put     putCmd     `cmd:"" help:"Store a value under KEY."`
	Del     delCmd     `cmd:"" help:"Delete KEY (also when it is absent)."`
	TTL     ttlCmd     `cmd:"" name:"ttl" help:"Print how long KEY has left before it expires."`
	Ls      lsCmd      `cmd:"" help:"List keys, in byte order."`
	Members membersCmd `cmd:"" help:"List the cluster's members."`
	Ready   readyCmd   `cmd:"" help:"Wait until the node has recovered and synced (up to --timeout)."`
	Blob    blobCmd    `cmd:"" help:"Store, fetch, list and delete erasure-coded blobs."`
	Context contextCmd `cmd:"" help:"Manage named contexts: saved node addresses and credentials."`

	Completion completionCmd `cmd:"" help:"Print a shell completion script: eval \"$(disperse completion bash)\"."`
	Serve      otherCmd      `cmd:"" help:"Run a node (disperse serve --help lists every setting)."`
	Bench      otherCmd      `cmd:"" help:"Drive a node's HTTP API with load and print requests/s and latency."`
	Version    otherCmd      `cmd:"" help:"Print the version."`
}

// globals are the flags every client command takes.
type globals struct {
	Addr    optString     `help:"The node's HTTP address: http://host:port, https://host:port or host:port (default http://127.0.0.1:$HTTP_PORT, or :8000)." env:"DISPERSE_ADDR" placeholder:"URL"`
	Token   optString     `help:"Bearer token of the node's --auth-token or --auth-file." env:"DISPERSE_TOKEN" placeholder:"TOKEN"`
	CACert  optString     `name:"cacert" help:"PEM file of the CA that signed the node's TLS certificate." env:"DISPERSE_CACERT" placeholder:"FILE"`
	Cert    optString     `help:"PEM client certificate, for a node with --tls-client-ca." env:"DISPERSE_CERT" placeholder:"FILE"`
	Key     optString     `help:"PEM key of --cert." env:"DISPERSE_KEY" placeholder:"FILE"`
	Timeout time.Duration `help:"Bound on connecting and on any stretch of a request in which no byte moves; a transfer that keeps moving may take longer. For ready: the whole wait." default:"30s" env:"DISPERSE_TIMEOUT"`
	JSON    bool          `name:"json" help:"Print results (and errors) as JSON."`
	Context optString     `name:"context" help:"Use the named context of the config file instead of its current one." env:"DISPERSE_CONTEXT" placeholder:"NAME"`
	Config  optString     `help:"Config file of the contexts (default $XDG_CONFIG_HOME/disperse/config.json or ~/.config/disperse/config.json)." env:"DISPERSE_CONFIG" placeholder:"FILE"`
}

// optString is a string flag that knows whether it was given (on the
// command line or in its environment variable), so that an empty value
// given on purpose (--token "") still wins over a context.
type optString struct {
	v   string
	set bool
}

// Decode reads the flag's value.
func (o *optString) Decode(ctx *kong.DecodeContext) error {
	if err := ctx.Scan.PopValueInto("value", &o.v); err != nil {
		return err
	}
	o.set = true
	return nil
}

// otherCmd stands for a command with a parser of its own.
type otherCmd struct {
	Args []string `arg:"" optional:"" passthrough:""`
}

func (otherCmd) Run() error { return errors.New("handled before the client commands") }

// env is what the commands run with.
type env struct {
	g      *globals
	kctx   *kong.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// conn is the connection settings resolved from flags, variables, the
	// context and the defaults.
	conn connSettings
}

// kongExit is the panic with which kong's exit (after --help) unwinds to
// runCLI.
type kongExit struct{ code int }

// newParser builds the kong parser of the client commands.
func newParser(stdout, stderr io.Writer) (*kong.Kong, *cli, error) {
	var c cli
	p, err := kong.New(&c,
		kong.Name("disperse"),
		kong.Description("Disperse: a distributed cache and erasure-coded blob store. "+
			"serve runs a node; the other commands talk to one over its HTTP API. "+
			"Connection settings come from the flags, then their DISPERSE_* variables, then the selected context "+
			"of the config file (disperse context --help), then the defaults."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit{code}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
	)
	return p, &c, err
}

// runCLI runs a client command line and returns the exit status: 0, 1 for
// a failed request, 2 for a bad command line.
func runCLI(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	p, c, err := newParser(stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "disperse: %v\n", err)
		return exitFailure
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = e.code
			if code != exitOK {
				code = exitUsage
			}
		}
	}()
	kctx, err := p.Parse(args)
	if err != nil {
		name, msg := "disperse", err.Error()
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil {
			if cmd := commandWords(pe.Context.Command()); cmd != "" {
				name += " " + cmd
				msg = strings.TrimPrefix(msg, cmd+": ") // a Validate error names the command already
			}
		}
		fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", name, oneLine(msg), name)
		return exitUsage
	}
	e := &env{g: &c.globals, kctx: kctx, stdin: stdin, stdout: stdout, stderr: stderr}
	name := "disperse " + commandWords(kctx.Command())
	if err := kctx.Run(e); err != nil {
		return reportError(e, name, err)
	}
	return exitOK
}

// commandWords is a kong command path without its <args>.
func commandWords(cmd string) string {
	var words []string
	for w := range strings.FieldsSeq(cmd) {
		if !strings.HasPrefix(w, "<") {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

// usageError is a bad command line found after parsing (conflicting
// flags, a context that does not exist): exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// reportError prints err as one line (or a JSON object with --json) and
// returns the exit status.
func reportError(e *env, name string, err error) int {
	code := exitFailure
	var ue *usageError
	if errors.As(err, &ue) {
		code = exitUsage
	}
	msg := oneLine(err.Error())
	if e.g.JSON {
		out := map[string]any{"error": msg, "command": name}
		var ce *client.Error
		if errors.As(err, &ce) {
			out["status"], out["code"], out["message"] = ce.Status, ce.Code, ce.Message
		}
		writeJSON(e.stderr, out)
		return code
	}
	fmt.Fprintf(e.stderr, "%s: %s\n", name, msg)
	return code
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// writeJSON prints v as one line of JSON, without HTML escapes.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// client makes the client of the resolved connection settings.
func (e *env) client() (*client.Client, error) {
	if err := e.resolve(); err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithTimeout(e.g.Timeout), client.WithToken(e.conn.token)}
	if e.conn.cacert != "" {
		opts = append(opts, client.WithCAFile(e.conn.cacert))
	}
	if e.conn.cert != "" || e.conn.key != "" {
		if e.conn.cert == "" || e.conn.key == "" {
			return nil, usageErrorf("--cert and --key go together")
		}
		opts = append(opts, client.WithClientCert(e.conn.cert, e.conn.key))
	}
	c, err := client.New(e.conn.addr, opts...)
	if err != nil {
		return nil, &usageError{connFlagError(err)}
	}
	return c, nil
}

// connFlagError names the flag behind a failed client option.
func connFlagError(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "CA file"):
		return "--cacert: " + msg
	case strings.HasPrefix(msg, "client certificate"):
		return "--cert/--key: " + msg
	case strings.HasPrefix(msg, "client: address"):
		return "--addr: " + strings.TrimPrefix(msg, "client: ")
	}
	return msg
}

// ctx is the context of a request: cancelled by SIGINT or SIGTERM.
func (e *env) ctx() (context.Context, context.CancelFunc) {
	return signalContext()
}

// session is what a command that talks to the node starts with: the
// client, and the context (ended by SIGINT or SIGTERM) its calls run in.
func (e *env) session() (*client.Client, context.Context, context.CancelFunc, error) {
	cl, err := e.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := e.ctx()
	return cl, ctx, cancel, nil
}

// completeIfAsked answers a shell's completion request (the environment
// has COMP_LINE) and reports whether it did.
func completeIfAsked(stdout io.Writer) bool {
	if os.Getenv("COMP_LINE") == "" {
		return false
	}
	p, _, err := newParser(stdout, io.Discard)
	if err != nil {
		return false
	}
	done := false
	kongplete.Complete(p, kongplete.WithExitFunc(func(int) { done = true }),
		kongplete.WithErrorHandler(func(error) {}))
	return done
}
