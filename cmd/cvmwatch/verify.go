package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
	allowEmpty    bool
	json          bool
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
change. The report then also measures, per class of change (out of a
transitional state such as STOPPING, or out of a stable one), how long after
the true change each event was observed and stored (p50/p90/p99/max), and
which fraction of the true transitions appear as their own event (per class
and per state entered).
With --final (the fleet has been quiet for two poll intervals and the
watcher caught up) nothing may be lost: each instance's last event ends in its
true state, and every state held longer than --must-see is in the chain.
These need to know how the baseline was taken: --announced, or the window of
a silent baseline (--baseline-start, --baseline-end).

Operation events (<prefix>.operation.>: an operation that left no visible
state change) are checked too: well formed, each request reported once per
instance and never also as a state event's operation and, with --sim, an
operation the simulator recorded on that instance within the event's window.

The report says what each check judged (messages, events, instances, true
changes, the span of time covered), so that a pass shows it had material.
A stream that holds no event under --prefix fails: nothing was checked.
When it holds messages under another prefix, the message names it. Pass
--allow-empty where an empty stream is expected.

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
	fl.BoolVar(&f.allowEmpty, "allow-empty", false, "pass on a stream with no event under --prefix (it is expected to be empty)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
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
		if truth, err = cvmsim.FetchHistory(ctx, f.sim); err != nil {
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
	stored, err := publisher.ReadStream(rctx, js, f.stream, f.nats.prefix)
	if err != nil {
		return explainStreamError(err, f.stream, f.nats.server)
	}
	r := oracle.Check(oracleMessages(stored), truth, opts)
	var ops []cvmsim.Operation
	if f.sim != "" {
		if ops, err = cvmsim.FetchOperations(rctx, f.sim); err != nil {
			return err
		}
	}
	operated, err := verifyOperations(rctx, js, f, stored, ops, opts)
	if err != nil {
		return err
	}
	r.Operations = operated.report
	r.Violations = append(r.Violations, operated.report.Violations...)
	var attr *oracle.AttributionReport
	if f.sim != "" {
		if attr, err = verifyAttribution(rctx, js, f, slices.Concat(stored, operated.messages), truth, ops, opts); err != nil {
			return err
		}
		r.Violations = append(r.Violations, attr.Violations...)
	}
	if err := printReport(c.OutOrStdout(), r, f.json); err != nil {
		return err
	}
	if attr != nil && !f.json {
		fmt.Fprintln(c.OutOrStdout(), "  checked "+attr.String())
	}
	if !r.OK() {
		return errViolations
	}
	if r.Messages == 0 && !f.allowEmpty {
		cctx, cancel := context.WithTimeout(ctx, jsCallTimeout)
		defer cancel()
		return fmt.Errorf("%w: %s; --allow-empty if an empty stream is expected", errNothingChecked,
			emptyStreamReason(cctx, js, f.stream, f.nats.prefix, r.TruthSteps))
	}
	return nil
}

// errNothingChecked makes verify exit 1: a check that read nothing proves
// nothing.
var errNothingChecked = errors.New("nothing was checked")

// emptyStreamReason says why a reader found no event under prefix in
// stream: the stream holds nothing, or holds messages under other prefixes
// (named, from its configuration). truthChanges > 0 adds that the ground
// truth has changes an event should have recorded.
func emptyStreamReason(ctx context.Context, js jetstream.JetStream, stream, prefix string, truthChanges int) string {
	why := fmt.Sprintf("stream %s holds no event under %s", stream, publisher.StateFilter(prefix))
	if c, err := publisher.DescribeStream(ctx, js, stream, prefix); err == nil && c.Messages > 0 {
		why = fmt.Sprintf("stream %s holds %d messages, none of them under %s; it captures %s",
			stream, c.Messages, publisher.StateFilter(prefix), strings.Join(c.Subjects, ", "))
		if p := slices.DeleteFunc(c.Prefixes(), func(s string) bool { return s == prefix }); len(p) > 0 {
			why += fmt.Sprintf(" (try --prefix %s)", strings.Join(p, " or --prefix "))
		}
	}
	if truthChanges > 0 {
		why += fmt.Sprintf(", while the simulator's truth records %d changes", truthChanges)
	}
	return why
}

// oracleMessages hands the stored messages to the oracle.
func oracleMessages(stored []publisher.StoredMessage) []oracle.Message {
	out := make([]oracle.Message, len(stored))
	for i, m := range stored {
		out[i] = oracle.Message{Seq: m.Seq, Subject: m.Subject, MsgID: m.MsgID, Time: m.Time, Data: m.Data}
	}
	return out
}

// printReport prints what each check judged, the violations and, with
// truth, the detection latency and capture figures; or the report as JSON.
func printReport(w io.Writer, r oracle.Report, asJSON bool) error {
	if asJSON {
		if r.Violations == nil {
			r.Violations = []oracle.Violation{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if _, err := fmt.Fprintln(w, r.String()); err != nil {
		return err
	}
	for _, line := range r.Judged() {
		if _, err := fmt.Fprintln(w, "  checked "+line); err != nil {
			return err
		}
	}
	if r.Latency == nil {
		return nil
	}
	for _, line := range r.Latency.Lines() {
		if _, err := fmt.Fprintln(w, "  measured "+line); err != nil {
			return err
		}
	}
	return nil
}
