package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/disperse/disperse/internal/loadgen"
)

// benchMain runs `disperse bench` (package loadgen) until it is over or
// SIGINT or SIGTERM, and returns its exit status.
func benchMain(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return loadgen.Main(ctx, args, stdout, stderr)
}
