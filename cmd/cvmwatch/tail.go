package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// jsCallTimeout bounds one JetStream API call (stream lookup, consumer
// creation) of tail and history.
const jsCallTimeout = 10 * time.Second

// tailFlags are the flags of "cvmwatch tail".
type tailFlags struct {
	nats    natsClientFlags
	json    bool
	noColor bool
	since   time.Duration
	all     bool
	stream  string
}

// newTailCommand returns "cvmwatch tail".
func newTailCommand() *cobra.Command {
	var f tailFlags
	c := &cobra.Command{
		Use:   "tail [flags] [FILTER...]",
		Short: "Print instance state changes as they are published",
		Long: `Subscribe to the watcher's events and print one line per transition: time,
account/region, instance, FROM -> TO, the instance's event #sequence and the
window in which the change happened. Colour on a terminal; --json prints each
CloudEvent as received, one per line, for jq and other programs.

FILTERs narrow the subscription (each value is one subject token):
  account=NAME  region=REGION  instance=ID  from=STATE  to=STATE
States are upper case (RUNNING, STOPPED, ...; ABSENT for appeared/released)
and are upper-cased for you. The filters become the subject
<prefix>.state.<account>.<region>.<instance>.<from>.<to>, '*' where unset.
Two more filter on the instance's identity that events carry (data.instance;
an event without it matches neither):
  tag:KEY=VALUE  the instance has tag KEY with exactly VALUE (repeatable)
  name=GLOB      the instance's name matches GLOB (* and ? as in a shell)

Without --since or --all, tail shows what is published from now on (core NATS:
nothing is stored for it). With them it first replays the JetStream stream
and then follows it, so nothing in between is missed.
Credentials come from flags or from NATS_CREDS, NATS_NKEY, NATS_TOKEN,
NATS_USER/NATS_PASSWORD (prefer the environment: flags are visible in ps).
Stops on Ctrl-C.`,
		Example: `  cvmwatch tail
  cvmwatch tail account=prod to=STOPPED
  cvmwatch tail tag:env=prod 'name=web-*'
  cvmwatch tail instance=ins-r8hr2upy --since 24h
  cvmwatch tail --server nats://nats.internal:4222 --json region=ap-guangzhou | jq .data
  NATS_TOKEN=... cvmwatch tail --all from=ABSENT`,
		RunE: func(c *cobra.Command, args []string) error {
			if err := f.nats.resolve(c, os.LookupEnv); err != nil {
				return err
			}
			subjectArgs, filter, err := splitFilters(args)
			if err != nil {
				return usageError{err}
			}
			subject, err := filterSubject(f.nats.prefix, subjectArgs)
			if err != nil {
				return usageError{err}
			}
			subjects := []string{subject}
			if op := operationSubject(f.nats.prefix, subject); op != "" {
				subjects = append(subjects, op)
			}
			if f.since < 0 {
				return usageError{fmt.Errorf("--since: %v is negative", f.since)}
			}
			if f.all && c.Flags().Changed("since") {
				return usageError{errors.New("--since and --all exclude each other")}
			}
			if err := watcher.ValidateToken(f.stream); err != nil {
				return usageError{fmt.Errorf("--stream: %w", err)}
			}
			w := &eventWriter{out: c.OutOrStdout(), json: f.json, color: !f.json && wantColor(c.OutOrStdout(), f.noColor, os.LookupEnv), filter: filter}
			return runTail(c.Context(), f, subjects, w, c.ErrOrStderr())
		},
	}
	f.nats.register(c)
	c.Flags().BoolVar(&f.json, "json", false, "print each event as its CloudEvent JSON, one per line")
	c.Flags().BoolVar(&f.noColor, "no-color", false, "no colour, even on a terminal (NO_COLOR is honoured too)")
	c.Flags().DurationVar(&f.since, "since", 0, "first replay the events of this last period from the stream (e.g. 1h), then follow")
	c.Flags().BoolVar(&f.all, "all", false, "first replay every event in the stream, then follow")
	c.Flags().StringVar(&f.stream, "stream", defaultStream, "JetStream stream to replay from (nats.stream)")
	return c
}

// filterKeys returns the filter names, in subject order.
func filterKeys() []string { return []string{"account", "region", "instance", "from", "to"} }

// filterSubject turns "key=value" filters into the subject
// <prefix>.state.<account>.<region>.<instance>.<from>.<to>, with '*' for
// every key not given. An unknown key, a repeated key or a value that is not
// one safe subject token is an error.
func filterSubject(prefix string, args []string) (string, error) {
	keys := filterKeys()
	tokens := map[string]string{}
	for _, arg := range args {
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return "", fmt.Errorf("filter %s: want KEY=VALUE with KEY one of %s", watcher.Quote(arg), strings.Join(keys, ", "))
		}
		if !slices.Contains(keys, key) {
			return "", fmt.Errorf("filter %s: unknown key %s; known keys: %s", watcher.Quote(arg), watcher.Quote(key), strings.Join(keys, ", "))
		}
		if _, dup := tokens[key]; dup {
			return "", fmt.Errorf("filter %s: %s given twice (a filter matches one value)", watcher.Quote(arg), key)
		}
		if key == "from" || key == "to" {
			value = strings.ToUpper(value)
		}
		if err := watcher.ValidateToken(value); err != nil {
			return "", fmt.Errorf("filter %s: %w", watcher.Quote(arg), err)
		}
		tokens[key] = value
	}
	parts := []string{prefix, "state"}
	for _, k := range keys {
		if v, ok := tokens[k]; ok {
			parts = append(parts, v)
		} else {
			parts = append(parts, "*")
		}
	}
	return strings.Join(parts, "."), nil
}

// operationSubject is the subject of the operation events that the state
// subject's filters also select (account, region, instance), or "" when
// the filters name a from or a to state: an operation event changes no
// state, so it is neither from nor to one.
func operationSubject(prefix, stateSubject string) string {
	tokens := strings.Split(strings.TrimPrefix(stateSubject, prefix+".state."), ".")
	if len(tokens) != 5 || tokens[3] != "*" || tokens[4] != "*" {
		return ""
	}
	return strings.Join(append([]string{prefix, "operation"}, tokens[:3]...), ".")
}

// runTail follows subjects: core subscriptions, or the stream with --since
// or --all. It returns nil when ctx ends.
func runTail(ctx context.Context, f tailFlags, subjects []string, w *eventWriter, stderr io.Writer) error {
	subject := strings.Join(subjects, ", ")
	nc, err := f.nats.connect(ctx, "cvmwatch-tail", stderr, true)
	if err != nil {
		return err
	}
	defer nc.Close()
	if f.all || f.since > 0 {
		return replayAndFollow(ctx, nc, f, subjects, w, stderr)
	}

	msgs := make(chan *nats.Msg, 4096)
	for _, s := range subjects {
		sub, err := nc.ChanSubscribe(s, msgs)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", s, err)
		}
		defer sub.Unsubscribe()
	}
	fctx, cancel := context.WithTimeout(ctx, jsCallTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	fmt.Fprintf(stderr, "tail: following %s on %s (Ctrl-C to stop)\n", subject, nc.ConnectedUrlRedacted())
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			if err := printMsg(w, m.Subject, m.Data, stderr); err != nil {
				return err
			}
		}
	}
}

// replayAndFollow reads subject from the stream, from --since ago or from
// the start, and keeps following it. A stream that holds no event under the
// prefix is said so on stderr before it waits for one.
func replayAndFollow(ctx context.Context, nc *nats.Conn, f tailFlags, subjects []string, w *eventWriter, stderr io.Writer) error {
	subject := strings.Join(subjects, ", ")
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var start time.Time
	from := "the start"
	if !f.all {
		start = time.Now().Add(-f.since)
		from = start.Format(lineTimeFormat)
	}
	cctx, cancel := context.WithTimeout(ctx, jsCallTimeout)
	defer cancel()
	c, err := publisher.DescribeStream(cctx, js, f.stream, f.nats.prefix)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began: not an error
		}
		return explainStreamError(err, f.stream, f.nats.server)
	}
	if c.UnderPrefix == 0 {
		fmt.Fprintf(stderr, "tail: %s\n", emptyStreamReason(cctx, js, f.stream, f.nats.prefix, 0))
	}
	// A stream laid out before operation events does not capture them:
	// follow its state events alone, as before.
	if len(subjects) > 1 && !slices.ContainsFunc(c.Subjects, func(captured string) bool { return captures(captured, subjects[1]) }) {
		subjects = subjects[:1]
		subject = subjects[0]
	}
	fmt.Fprintf(stderr, "tail: replaying %s from stream %s since %s, then following (Ctrl-C to stop)\n", subject, f.stream, from)
	err = publisher.Follow(ctx, js, f.stream, subjects, start, func(m publisher.StoredMessage) error {
		return printMsg(w, m.Subject, m.Data, stderr)
	})
	return explainStreamError(err, f.stream, f.nats.server)
}

// explainStreamError says what a stream reader's error means for the user:
// which stream is missing where, or that the server stores nothing.
func explainStreamError(err error, stream, server string) error {
	switch {
	case errors.Is(err, publisher.ErrNoStream):
		return fmt.Errorf("stream %s does not exist on %s (is cvmwatch publishing there with nats.stream %s? see --stream)", stream, publisher.Redact(server), stream)
	case errors.Is(err, publisher.ErrNoJetStream):
		return fmt.Errorf("%s has no JetStream: nothing is stored to read (is cvmwatch in nats.mode core?)", publisher.Redact(server))
	}
	return err
}

// printMsg prints one message. One that is not an event is reported on
// stderr and skipped; only a failing write to stdout ends the command.
func printMsg(w *eventWriter, subject string, data []byte, stderr io.Writer) error {
	err := w.write(subject, data)
	var werr writeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &werr):
		return err
	default:
		fmt.Fprintf(stderr, "skipped: %v\n", err)
		return nil
	}
}
