package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// verifyFlags are the flags of `cvmwatch verify`.
type verifyFlags struct {
	nats          natsClientFlags
	stream        string
	sim           string
	final         bool
	announced     bool
	mustSee       time.Duration
	baselineStart string
	baselineEnd   string
	regions       []string
}

// errViolations makes verify exit 1 after printing the report.
var errViolations = errors.New("the stream breaks cvmwatch's guarantees")

func newVerifyCommand() *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify [flags]",
		Short: "Check an event stream against cvmwatch's guarantees",
		Long: `Read every event of a JetStream stream and check what cvmwatch promises:
no event id stored twice or with two contents, deterministic ids, each event on
its own subject, and per instance a chain with sequence 1, 2, 3, ... in which
each event starts where the previous one ended.

With --sim (a simulator's admin URL) the events are also checked against the
simulator's ground truth: every event must be a step of the instance's true
history (skipped intermediate states allowed) whose window contains the real
change. With --final (the fleet has been quiet for two poll intervals and the
watcher caught up) nothing may be lost: each instance's last event ends in its
true state, and every state held longer than --must-see is in the chain.
These need to know how the baseline was taken: --announced, or the window of
a silent baseline (--baseline-start, --baseline-end).

Exit status 0 when the stream keeps every guarantee, 1 otherwise.`,
		Example: `  cvmwatch verify --stream CVMWATCH
  cvmwatch verify --server nats://127.0.0.1:4222 --sim http://127.0.0.1:9000 --final --must-see 1m`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.nats.resolve(c, os.LookupEnv); err != nil {
				return err
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			return runVerify(c.Context(), c, f, opts)
		},
	}
	f.nats.register(c)
	fl := c.Flags()
	fl.StringVar(&f.stream, "stream", defaultStream, "JetStream stream to check (nats.stream)")
	fl.StringVar(&f.sim, "sim", "", "simulator URL (its /_sim/history is the ground truth)")
	fl.BoolVar(&f.final, "final", false, "the fleet is quiet and the watcher caught up: check that nothing was lost (needs --sim)")
	fl.DurationVar(&f.mustSee, "must-see", 0, "with --final: every state held at least this long must be in the chain (e.g. two poll intervals)")
	fl.BoolVar(&f.announced, "announced", false, "the watcher announced its baseline (events.announce_baseline): every chain starts from ABSENT")
	fl.StringVar(&f.baselineStart, "baseline-start", "", "RFC 3339 time the watcher first started (silent baseline)")
	fl.StringVar(&f.baselineEnd, "baseline-end", "", "RFC 3339 time its first complete scan ended (silent baseline)")
	fl.StringSliceVar(&f.regions, "regions", nil, "regions the watcher watches (default: every region of the simulator)")
	return c
}

// options turns the flags into oracle options.
func (f verifyFlags) options() (oracle.Options, error) {
	opts := oracle.Options{Prefix: f.nats.prefix, Regions: f.regions, MustSee: f.mustSee, Announced: f.announced}
	if f.announced && f.baselineStart != "" {
		return opts, usageError{errors.New("--announced and --baseline-start exclude each other")}
	}
	if (f.final || f.mustSee > 0) && f.sim == "" {
		return opts, usageError{errors.New("--final and --must-see need --sim (the ground truth)")}
	}
	if (f.baselineStart == "") != (f.baselineEnd == "") {
		return opts, usageError{errors.New("--baseline-start and --baseline-end go together")}
	}
	if f.baselineStart != "" {
		var err error
		if opts.BaselineStart, err = time.Parse(time.RFC3339Nano, f.baselineStart); err != nil {
			return opts, usageError{fmt.Errorf("--baseline-start: %w", err)}
		}
		if opts.BaselineEnd, err = time.Parse(time.RFC3339Nano, f.baselineEnd); err != nil {
			return opts, usageError{fmt.Errorf("--baseline-end: %w", err)}
		}
		if opts.BaselineEnd.Before(opts.BaselineStart) {
			return opts, usageError{errors.New("--baseline-end is before --baseline-start")}
		}
	}
	return opts, nil
}

func runVerify(ctx context.Context, c *cobra.Command, f verifyFlags, opts oracle.Options) error {
	var truth []cvmsim.Change
	if f.sim != "" {
		var err error
		if truth, err = oracle.FetchHistory(ctx, f.sim); err != nil {
			return err
		}
	}
	if f.final {
		opts.End = time.Now()
	}
	nc, err := f.nats.connect(ctx, "cvmwatch-verify", c.ErrOrStderr(), false)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	msgs, err := publisher.ReadStream(rctx, js, f.stream, f.nats.prefix)
	if err != nil {
		return err
	}
	r := oracle.Check(msgs, truth, opts)
	fmt.Fprintln(c.OutOrStdout(), r.String())
	if !r.OK() {
		return errViolations
	}
	return nil
}
