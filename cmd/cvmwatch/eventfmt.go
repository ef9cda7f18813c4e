package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// ANSI colours of the readable event line.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// lineTimeFormat is the time of an event line: RFC 3339 with milliseconds,
// in the local zone (UTC in a container without TZ).
const lineTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// eventWriter prints events for a person (one aligned line each) or for a
// program (--json: each CloudEvent as received, one per line).
type eventWriter struct {
	out   io.Writer
	json  bool
	color bool
	loc   *time.Location
	// filter drops events whose enrichment does not match (tail's tag:
	// and name= filters).
	filter eventFilter
}

// write prints one message body. A body that is not a cvmwatch event is
// reported as an error and not printed; a failed write is a writeError.
func (w *eventWriter) write(subject string, data []byte) error {
	if w.filter.active() {
		e, err := watcher.UnmarshalCloudEvent(data)
		if err != nil {
			return fmt.Errorf("message on %s: %w", watcher.Quote(subject), err)
		}
		if !w.filter.match(e) {
			return nil
		}
	}
	if w.json {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return fmt.Errorf("message on %s is not JSON: %w", watcher.Quote(subject), err)
		}
		b.WriteByte('\n')
		if _, err := w.out.Write(b.Bytes()); err != nil {
			return writeError{err}
		}
		return nil
	}
	e, err := watcher.UnmarshalCloudEvent(data)
	if err != nil {
		return fmt.Errorf("message on %s: %w", watcher.Quote(subject), err)
	}
	if _, err := io.WriteString(w.out, w.line(e)+"\n"); err != nil {
		return writeError{err}
	}
	return nil
}

// writeError is a failed write to the output (a closed pipe): the end of
// the command, unlike a message that is not an event.
type writeError struct{ error }

func (e writeError) Unwrap() error { return e.error }

// line renders e as
//
//	2026-11-26T23:10:00.000Z  prod/ap-guangzhou  ins-r8hr2upy  RUNNING -> STOPPED  #7  window 29.877s  web-01 [env=prod team=web]  by StopInstances SUCCESS (request 6e1c...)
//
// where the window is how long before the time the instance was last seen
// in FROM: the change happened within it. An operation event (an operation
// that left no visible state change) reads
//
//	2026-11-26T23:10:00.000Z  prod/ap-guangzhou  ins-r8hr2upy  RUNNING (no change)  op  window 29.877s  web-01  by RebootInstances SUCCESS (request 9a1f...)
//
// with the window in which the operation was made. An appearance has no window. The
// name and first tags follow when the event carries data.instance, the
// operation when it carries data.operation.
func (w *eventWriter) line(e watcher.Event) string {
	loc := w.loc
	if loc == nil {
		loc = time.Local
	}
	window := "first seen"
	if !e.PreviousObservedAt.IsZero() {
		window = "window " + e.ObservedAt.Sub(e.PreviousObservedAt).Round(time.Millisecond).String()
	}
	from, to := fmt.Sprintf("%-13s", e.From), fmt.Sprintf("%-13s", e.To)
	target := fmt.Sprintf("%-24s", e.Target.String())
	ts := e.ObservedAt.In(loc).Format(lineTimeFormat)
	seq := fmt.Sprintf("#%-4d", e.Sequence)
	if w.color {
		ts = ansiDim + ts + ansiReset
		target = ansiCyan + target + ansiReset
		from = stateColor(e.From) + from + ansiReset
		to = ansiBold + stateColor(e.To) + to + ansiReset
		window = ansiDim + window + ansiReset
	}
	change := from + " -> " + to
	if e.IsOperation() {
		// An operation that left no visible state change: the state, and
		// the window in which the operation was made.
		change, seq = fmt.Sprintf("%-30s", string(e.To)+" (no change)"), "op   "
		if w.color {
			change = stateColor(e.To) + change + ansiReset
		}
	}
	parts := []string{ts, target, fmt.Sprintf("%-12s", e.InstanceID), change, seq, window}
	if id := identity(e.Instance); id != "" {
		parts = append(parts, id)
	}
	if op := operation(e.Operation); op != "" {
		parts = append(parts, op)
	}
	if a := actor(e.Actor); a != "" {
		parts = append(parts, a)
	}
	return strings.Join(parts, "  ")
}

// stateColor picks a colour per CVM state: green running, red stopped or
// gone, yellow for everything in between.
func stateColor(s watcher.State) string {
	switch s {
	case "RUNNING":
		return ansiGreen
	case "STOPPED", "SHUTDOWN", "TERMINATING", "LAUNCH_FAILED", watcher.Absent:
		return ansiRed
	default:
		return ansiYellow
	}
}
