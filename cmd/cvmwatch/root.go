package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// usageError marks a bad command line (exit code 2).
type usageError struct{ error }

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "cvmwatch",
		Short: "Turn Tencent Cloud CVM instance state changes into NATS events",
		Long: `cvmwatch polls DescribeInstancesStatus for every configured account and
region, diffs each instance's state against the last snapshot and publishes
every transition to NATS as a CloudEvent.

Start with "cvmwatch demo": a simulated fleet, no cloud account needed.`,
		Example: `  cvmwatch demo
  cvmwatch run --config /etc/cvmwatch/cvmwatch.yaml
  cvmwatch tail account=prod to=STOPPED`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath())}
	})
	root.AddCommand(
		newDemoCommand(),
		newRunCommand(),
		newCheckConfigCommand(),
		newStateCommand(),
		newSimCommand(),
		newVersionCommand(),
		newVerifyCommand(),
		newTailCommand(), newHistoryCommand(), newHealthcheckCommand(),
		newNotifyCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  cvmwatch version",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(c.OutOrStdout(), "cvmwatch %s\n", version)
			return err
		},
	}
}

// noArgs is cobra.NoArgs as a usage error (exit status 2).
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (see %s --help)", c.CommandPath(), args[0], c.CommandPath())}
	}
	return nil
}
