package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// historyFlags are the flags of "cvmwatch history".
type historyFlags struct {
	nats    natsClientFlags
	stream  string
	json    bool
	noColor bool
}

// newHistoryCommand returns "cvmwatch history".
func newHistoryCommand() *cobra.Command {
	var f historyFlags
	c := &cobra.Command{
		Use:   "history [flags] INSTANCE_ID",
		Short: "Print an instance's transitions from the JetStream stream (the audit trail)",
		Long: `Read every stored transition of one instance from the JetStream stream, in
order, and print them as tail does (--json: the CloudEvents as stored), then
exit. Exact replays (the same event id stored twice) are shown once; a gap in
the instance's #sequence (events removed by the stream's max age, say) is
reported on stderr.

Exit status 1 if the stream does not exist or holds no event of the instance.`,
		Example: `  cvmwatch history ins-r8hr2upy
  cvmwatch history --server nats://nats.internal:4222 --stream CVMWATCH ins-r8hr2upy
  cvmwatch history --json ins-r8hr2upy | jq -r '[.time, .data.from, .data.to] | @tsv'`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("history takes one INSTANCE_ID, got %d arguments", len(args))}
			}
			if err := watcher.ValidateToken(args[0]); err != nil {
				return usageError{fmt.Errorf("instance id %s: %w", watcher.Quote(args[0]), err)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := f.nats.resolve(c, os.LookupEnv); err != nil {
				return err
			}
			if err := watcher.ValidateToken(f.stream); err != nil {
				return usageError{fmt.Errorf("--stream: %w", err)}
			}
			w := &eventWriter{out: c.OutOrStdout(), json: f.json, color: !f.json && wantColor(c.OutOrStdout(), f.noColor, os.LookupEnv)}
			return runHistory(c.Context(), f, args[0], w, c.ErrOrStderr())
		},
	}
	f.nats.register(c)
	c.Flags().StringVar(&f.stream, "stream", defaultStream, "JetStream stream to read (nats.stream)")
	c.Flags().BoolVar(&f.json, "json", false, "print each event as its CloudEvent JSON, one per line")
	c.Flags().BoolVar(&f.noColor, "no-color", false, "no colour, even on a terminal (NO_COLOR is honoured too)")
	return c
}

// runHistory prints the instance's events from the stream, up to its end.
func runHistory(ctx context.Context, f historyFlags, id string, w *eventWriter, stderr io.Writer) error {
	nc, err := f.nats.connect(ctx, "cvmwatch-history", stderr, false)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	subject := publisher.InstanceFilter(f.nats.prefix, id)
	msgs, err := publisher.ReadAll(ctx, js, f.stream, subject)
	if err != nil {
		return explainStreamError(err, f.stream, f.nats.server)
	}
	// Follow-ups name the actors found after their events went out: the
	// lines show them on their events; --json prints them in stream order.
	follow, err := publisher.ReadAll(ctx, js, f.stream, attributionFilter(f.nats.prefix, id))
	if err != nil {
		return explainStreamError(err, f.stream, f.nats.server)
	}
	// Operation events (an operation that left no visible state change) sit
	// in the history between the transitions, in stream order; a stream
	// laid out before them does not capture them.
	ops, err := readIfCaptured(ctx, js, f.stream, f.nats.prefix, operationFilter(f.nats.prefix, id))
	if err != nil {
		return explainStreamError(err, f.stream, f.nats.server)
	}
	if len(ops) > 0 {
		msgs = append(msgs, ops...)
		slices.SortStableFunc(msgs, func(a, b publisher.StoredMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	h := &historyChecker{stderr: stderr, last: map[watcher.Target]watcher.Event{}, ids: map[string]bool{},
		actors: map[string]*watcher.Actor{}}
	for _, m := range follow {
		if e, err := watcher.UnmarshalCloudEvent(m.Data); err == nil && e.Completes != "" && e.Actor != nil {
			h.actors[e.Completes] = e.Actor
		}
	}
	if w.json {
		msgs = append(msgs, follow...)
		slices.SortStableFunc(msgs, func(a, b publisher.StoredMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	for _, m := range msgs {
		if err := h.print(w, m.Subject, m.Data); err != nil {
			return err
		}
	}
	if h.printed == 0 {
		cctx, cancel := context.WithTimeout(ctx, jsCallTimeout)
		defer cancel()
		if c, err := publisher.DescribeStream(cctx, js, f.stream, f.nats.prefix); err == nil && c.UnderPrefix == 0 {
			return errors.New(emptyStreamReason(cctx, js, f.stream, f.nats.prefix, 0))
		}
		return fmt.Errorf("no events of instance %s in stream %s (subject %s)", id, f.stream, subject)
	}
	if h.duplicates > 0 {
		fmt.Fprintf(stderr, "note: %d exact replays (same event id) shown once\n", h.duplicates)
	}
	return nil
}

// historyChecker prints an instance's events and reports on stderr what
// breaks the per-instance guarantees in what the stream holds: a sequence
// that does not follow, a FROM that is not the previous TO.
type historyChecker struct {
	stderr     io.Writer
	last       map[watcher.Target]watcher.Event
	ids        map[string]bool
	printed    int
	duplicates int
	// actors are the actors follow-ups found later, by the event id they
	// complete.
	actors map[string]*watcher.Actor
}

// attributionFilter is the subject of one instance's follow-ups
// ("<prefix>.attribution.<account>.<region>.<instanceId>").
// operationFilter is the subject of an instance's operation events.
func operationFilter(prefix, instanceID string) string {
	if prefix == "" {
		prefix = publisher.DefaultPrefix
	}
	return prefix + ".operation.*.*." + instanceID
}

// readIfCaptured reads filter from the stream if the stream captures it,
// and nothing otherwise.
func readIfCaptured(ctx context.Context, js jetstream.JetStream, stream, prefix, filter string) ([]publisher.StoredMessage, error) {
	cctx, cancel := context.WithTimeout(ctx, jsCallTimeout)
	defer cancel()
	c, err := publisher.DescribeStream(cctx, js, stream, prefix)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(c.Subjects, func(s string) bool { return captures(s, filter) }) {
		return nil, nil
	}
	return publisher.ReadAll(ctx, js, stream, filter)
}

func attributionFilter(prefix, instanceID string) string {
	if prefix == "" {
		prefix = publisher.DefaultPrefix
	}
	return prefix + ".attribution.*.*." + instanceID
}

func (h *historyChecker) print(w *eventWriter, subject string, data []byte) error {
	e, err := watcher.UnmarshalCloudEvent(data)
	if err != nil {
		fmt.Fprintf(h.stderr, "skipped: message on %s: %v\n", watcher.Quote(subject), err)
		return nil
	}
	if h.ids[e.ID] {
		h.duplicates++
		return nil
	}
	h.ids[e.ID] = true
	if e.Completes != "" { // a follow-up, --json only: no place in the chain
		h.printed++
		return w.write(subject, data)
	}
	if a := h.actors[e.ID]; a != nil && e.Actor == nil && !w.json {
		e.Actor = a
		if data, err = watcher.MarshalCloudEvent(e); err != nil {
			return err
		}
	}
	if e.IsOperation() { // no place in the chain: it changed no state
		h.printed++
		return w.write(subject, data)
	}
	prev, seen := h.last[e.Target]
	switch {
	case !seen && e.Sequence > 1:
		fmt.Fprintf(h.stderr, "note: %s in %s starts at #%d: #1..#%d are not in the stream (removed by its max age?)\n",
			e.InstanceID, e.Target, e.Sequence, e.Sequence-1)
	case seen && e.Sequence > prev.Sequence+1:
		fmt.Fprintf(h.stderr, "note: #%d..#%d are not in the stream\n", prev.Sequence+1, e.Sequence-1)
	case seen && e.Sequence == prev.Sequence+1 && e.From != prev.To:
		fmt.Fprintf(h.stderr, "note: #%d starts from %s but #%d ended in %s\n", e.Sequence, e.From, prev.Sequence, prev.To)
	}
	h.last[e.Target] = e
	if err := w.write(subject, data); err != nil {
		return err
	}
	h.printed++
	return nil
}
