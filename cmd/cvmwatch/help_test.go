package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHelpHasExamples runs "--help" on every command of the
// real tree and wants an Examples section in each.
func TestEveryCommandHelpHasExamples(t *testing.T) {
	t.Parallel()
	var walk func(c *cobra.Command)
	var paths [][]string
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(io.Discard, io.Discard))
	for _, path := range paths {
		name := strings.Join(append([]string{"cvmwatch"}, path...), " ")
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(path, "--help")...)
			if code != 0 {
				t.Fatalf("%s --help exited %d: %s", name, code, stderr)
			}
			if !strings.Contains(stdout, "\nExamples:\n") {
				t.Errorf("%s --help has no Examples section:\n%s", name, stdout)
			}
		})
	}
}
