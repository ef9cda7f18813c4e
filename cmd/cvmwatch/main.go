// Command cvmwatch turns Tencent Cloud CVM instance state into a stream of
// events. See README.md for the commands; `cvmwatch --help` lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...". It is the
// only package-level variable of the command.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown; restoring the default
		// handlers makes a second one end the process at once.
		<-ctx.Done()
		stop()
	}()
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run executes one cvmwatch command line and returns the process exit code:
// 0 on success, 1 when the command failed, 2 for a usage error. It is what
// main calls and what the end-to-end tests call.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "cvmwatch: %v\n", err)
		if isUsageError(err) {
			return 2
		}
		return 1
	}
	return 0
}
