package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"

	"github.com/disperse/disperse/internal/loadgen"
)

// version is the release, set at build time with
// -ldflags '-X main.version=v1.2.3'; "dev" otherwise.
var version = "dev"

// Exit statuses of the binary.
const (
	exitOK      = 0
	exitFailure = 1 // the node could not start or failed while running
	exitUsage   = 2 // bad command line or bad setting
)

func main() {
	if completeIfAsked(os.Stdout) { // a shell asking for completions
		return
	}
	os.Exit(mainArgs(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// mainArgs runs the command line args and returns the exit status. serve,
// bench and version have parsers of their own; every other command is a
// client command (cli.go).
func mainArgs(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "serve":
		return serveMain(rest, stdout, stderr)
	case "bench":
		return benchMain(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "--help", "-help", "-h":
		return helpMain(rest, stdin, stdout, stderr)
	}
	return runCLI(args, stdin, stdout, stderr)
}

// helpMain prints the usage, or a command's.
func helpMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == "serve":
		writeServeUsage(stdout, settings())
	case len(args) > 0 && args[0] == "bench":
		loadgen.Usage(stdout)
	case len(args) > 0 && args[0] != "version":
		return runCLI(append(slices.Clone(args), "--help"), stdin, stdout, stderr)
	default:
		writeUsage(stdout)
	}
	return exitOK
}

// writeUsage prints the list of every command.
func writeUsage(w io.Writer) {
	runCLI([]string{"--help"}, nil, w, w)
}

// serveMain parses the settings, runs the node until SIGTERM or SIGINT and
// turns the outcome into an exit status. Every failure is one line on stderr.
func serveMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServe(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		writeServeUsage(stdout, settings())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "disperse serve: %v\n", err)
		return exitUsage
	}
	// First, while nothing else runs: it may execute the binary again.
	cfg.timerSlackErr = applyTimerSlack(cfg.TimerSlack)
	applyProcs(cfg.Fsync, os.Getenv("GOMAXPROCS"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A second signal after the first one kills the process the default way.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "disperse serve: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("disperse %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
