package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newRunCommand() *cobra.Command {
	var path string
	var insecure bool
	c := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the watcher daemon",
		Long: `Scan every configured account and region, diff against the snapshot in
data_dir, and publish every transition to NATS. Stops cleanly on SIGINT or
SIGTERM: the scan in flight is abandoned (never half committed), the outbox is
relayed for a few seconds, the database is closed.`,
		Example: `  cvmwatch run --config /etc/cvmwatch/cvmwatch.yaml`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(path, insecure)
			if err != nil {
				return err
			}
			log := newLogger(c.ErrOrStderr(), cfg.Log)
			for _, w := range cfg.warnings {
				log.Warn("config: " + w)
			}
			d, err := openDaemon(c.Context(), cfg, log)
			if err != nil && c.Context().Err() != nil {
				// SIGINT or SIGTERM while starting (waiting for NATS, a
				// stream leader, ...): a stop asked for, not a failure.
				log.Info("cvmwatch stopped while starting", "err", err)
				return nil
			}
			if err != nil {
				return err
			}
			runErr := d.Run(c.Context())
			closeErr := d.Close()
			log.Info("cvmwatch stopped")
			if runErr != nil {
				return runErr
			}
			return closeErr
		},
	}
	c.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	c.Flags().BoolVar(&insecure, "allow-insecure-permissions", false, "accept a config or credentials file with secrets that others can read")
	c.MarkFlagRequired("config")
	return c
}

func newCheckConfigCommand() *cobra.Command {
	var path string
	var insecure bool
	c := &cobra.Command{
		Use:   "check-config --config FILE",
		Short: "Validate a configuration file without connecting anywhere",
		Long: `Read, expand and validate the configuration and print the effective
configuration (defaults filled in, every secret redacted). Exit status 1 and
every problem found, each naming its key, if it is not valid.`,
		Example: `  cvmwatch check-config --config configs/cvmwatch.example.yaml`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(path, insecure)
			if err != nil {
				return err
			}
			out, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			for _, w := range cfg.warnings {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %s\n", w)
			}
			fmt.Fprintf(c.OutOrStdout(), "# %s is valid; effective configuration:\n%s", path, out)
			return nil
		},
	}
	c.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	c.Flags().BoolVar(&insecure, "allow-insecure-permissions", false, "accept a config or credentials file with secrets that others can read")
	c.MarkFlagRequired("config")
	return c
}

func newLogger(w io.Writer, lc LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
