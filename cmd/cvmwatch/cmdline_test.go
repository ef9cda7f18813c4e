package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// repoFile is the path of a file given relative to the repository root.
func repoFile(rel string) string { return filepath.Join("..", "..", filepath.FromSlash(rel)) }

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoFile(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseCommandLine checks args (what follows the binary's name) against the
// real command tree: it must name a runnable subcommand, use only flags that
// command defines, give every required flag, and pass its argument check.
// It returns the command with its flags parsed, to read their values.
func parseCommandLine(t *testing.T, where string, args []string) *cobra.Command {
	t.Helper()
	root := newRootCommand(io.Discard, io.Discard)
	c, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, args, err)
	}
	if c == root || !c.Runnable() {
		t.Fatalf("%s: %q names no cvmwatch subcommand", where, args)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatalf("%s: %q: %s: %v", where, args, c.CommandPath(), err)
	}
	if err := c.ValidateRequiredFlags(); err != nil {
		t.Fatalf("%s: %q: %v", where, args, err)
	}
	if err := c.ValidateArgs(c.Flags().Args()); err != nil {
		t.Fatalf("%s: %q: %v", where, args, err)
	}
	return c
}

// flagString returns a string flag's value, failing the test if the command
// has no such flag.
func flagString(t *testing.T, c *cobra.Command, name string) string {
	t.Helper()
	v, err := c.Flags().GetString(name)
	if err != nil {
		t.Fatalf("%s --%s: %v", c.CommandPath(), name, err)
	}
	return v
}

// listenPort splits a listen address and returns its host and port.
func listenPort(t *testing.T, what, addr string) (host string, port int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: port: %v", what, addr, err)
	}
	return h, n
}

// anyAddress reports whether a listen host accepts connections from other
// containers (all interfaces), as opposed to loopback only.
func anyAddress(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// loopbackName reports whether host is a loopback name or address.
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func TestExtraArgumentsAreUsageErrors(t *testing.T) {
	for _, cmd := range []string{"demo", "run", "check-config", "state", "sim", "version"} {
		var out syncBuffer
		if code := Run(t.Context(), []string{cmd, "surplus"}, &out, &out); code != 2 {
			t.Errorf("%s surplus: exit %d, want 2 (usage)\n%s", cmd, code, out.String())
		}
	}
}
