package oracle

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// Message is one message as stored in the stream.
type Message struct {
	Seq     uint64 // stream sequence
	Subject string
	MsgID   string    // the Nats-Msg-Id header
	Time    time.Time // when the stream stored it; zero if unknown
	Data    []byte
}

// Options say what Check may assume.
type Options struct {
	// Prefix is the subject prefix; default "cvm".
	Prefix string
	// Regions limits the truth to these regions (the ones the watcher
	// watched); empty means every region of the truth.
	Regions []string
	// Announced says the baseline was announced (events.announce_baseline):
	// every instance's first event must start from ABSENT.
	Announced bool
	// BaselineStart and BaselineEnd bound when a silent baseline was taken
	// (from the watcher's first start to the end of its first complete
	// scan): a first event not from ABSENT must start from a state the
	// instance held then. Unset and not Announced: the baseline is unknown,
	// and the checks that need it (no-event instances, must-see) are skipped.
	BaselineStart, BaselineEnd time.Time
	// End, if set, is a time at which the fleet had been quiet long enough
	// for the watcher to catch up and every event to be in the stream: the
	// loss checks run against the truth as of End.
	End time.Time
	// MustSee: every true state (other than ABSENT) entered after the
	// baseline and held at least this long must appear in the chain. Zero
	// disables the check. Two poll intervals, plus the longest time the
	// watcher was not scanning when it was killed.
	MustSee time.Duration
	// Scans, if set, are the clean scans the watcher committed (complete,
	// nothing rejected), for instance from its scan summaries. The MustSee
	// check then applies only to states that also lasted across
	// MustSeeScans of them: a watcher that was down, throttled or fed
	// garbage could not see what happened meanwhile.
	Scans []ScanWindow
	// MustSeeScans is how many clean scans of its region a state must span
	// to be checked; default 3 (an offset shift may skip an instance in one
	// scan, and a miss is only confirmed by the next).
	MustSeeScans int
	// Tolerance widens every window comparison (clock granularity); the
	// watcher rounds windows out to the millisecond, so zero is expected.
	Tolerance time.Duration
	// Until, if set, ends the span of true changes that the latency and
	// capture figures (Report.Latency) consider: a change after it may not
	// have been reported yet. Default End, else the last event's
	// observation.
	Until time.Time
	// Cycle is the time between two scans of an instance, for the capture
	// bound of Latency.States; zero: the median interval between the starts
	// of consecutive Scans of a region, unknown without two of them.
	Cycle time.Duration
}

// ScanWindow is when one scan of a region ran.
type ScanWindow struct {
	Region     string
	Start, End time.Time
}

// Violation is one broken guarantee.
type Violation struct {
	Kind     string `json:"kind"`               // duplicate, conflict, fork, malformed, chain, unjustified, lost
	Instance string `json:"instance,omitempty"` // region/instanceId, "" for stream-level problems
	Detail   string `json:"detail"`
}

func (v Violation) String() string {
	if v.Instance == "" {
		return v.Kind + ": " + v.Detail
	}
	return v.Kind + " " + v.Instance + ": " + v.Detail
}

// Report is the outcome of Check. The stream keeps its guarantees iff
// Violations is empty; the counts say what the checks had to judge, so that
// a pass shows it looked at something.
type Report struct {
	Messages   int `json:"messages"`     // state messages read: each one's form, subject, id and Nats-Msg-Id checked
	Events     int `json:"events"`       // distinct events: checked for duplicates and conflicts
	Instances  int `json:"instances"`    // instances with at least one event: each chain's sequence and from/to checked
	TruthSteps int `json:"truthChanges"` // true changes considered (0 without truth)
	// Justified counts the events compared with the true history (0 without
	// truth): each must be a step of it whose window contains the change.
	Justified int `json:"justified"`
	// FinalChecked counts the instances whose final true state was compared
	// with their last event (0 unless Options.End is set).
	FinalChecked int `json:"finalChecked"`
	// MustSeeChecked counts the true states held at least Options.MustSee
	// that were looked for in the chains.
	MustSeeChecked int `json:"mustSeeChecked"`
	// First and Last bound the events' observation times (zero without
	// events): the span of history the checks covered.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Latency says how soon the events followed the true changes and how
	// many true changes they captured; nil without truth.
	Latency *Latency `json:"latency,omitempty"`
	// Operations is what CheckOperations judged of the operation events,
	// when the caller ran it (cvmwatch verify does); its violations are
	// also in Violations.
	Operations *OperationReport `json:"operations,omitempty"`
	Violations []Violation      `json:"violations"`
}

// OK reports whether no guarantee was broken.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// Summary is a one-line description of r.
func (r Report) Summary() string {
	return fmt.Sprintf("messages=%d events=%d instances=%d truth_changes=%d violations=%d",
		r.Messages, r.Events, r.Instances, r.TruthSteps, len(r.Violations))
}

// Judged lists, one line per check, what each check judged.
func (r Report) Judged() []string {
	span := "no events"
	if r.Events > 0 {
		span = fmt.Sprintf("events observed from %s to %s (%s)", r.First.UTC().Format(time.RFC3339), r.Last.UTC().Format(time.RFC3339),
			r.Last.Sub(r.First).Round(time.Second))
	}
	lines := []string{
		fmt.Sprintf("form, subject and id: %d messages", r.Messages),
		fmt.Sprintf("duplicates and conflicts: %d distinct events", r.Events),
		fmt.Sprintf("per-instance chains: %d instances", r.Instances),
		fmt.Sprintf("events compared with the true history: %d of %d, against %d true changes", r.Justified, r.Events, r.TruthSteps),
		fmt.Sprintf("final states (nothing lost): %d instances", r.FinalChecked),
		fmt.Sprintf("states held at least --must-see: %d", r.MustSeeChecked),
		"span: " + span,
	}
	if r.Operations != nil {
		lines = append(lines, r.Operations.String())
	}
	return lines
}

// Check judges msgs (every state message of the stream, in stream order)
// against truth (nil: the stream-only checks) under opts.
func Check(msgs []Message, truth []cvmsim.Change, opts Options) Report {
	if opts.Prefix == "" {
		opts.Prefix = "cvm"
	}
	var r Report
	r.Messages = len(msgs)
	chains, stored := decode(msgs, opts.Prefix, &r)
	for _, key := range sortedKeys(chains) {
		checkChain(key, chains[key], opts, &r)
	}
	checkForks(chains, &r)
	r.Instances = len(chains)
	if truth != nil {
		tls, matched := checkTruth(chains, truth, opts, &r)
		r.Latency = measure(tls, chains, matched, stored, opts, r.Last)
	}
	return r
}

// decode parses the messages, reports malformed ones, duplicates and
// conflicts, and returns each instance's distinct events in stream order
// and when each event id was first stored (the messages with a Time).
func decode(msgs []Message, prefix string, r *Report) (map[string][]watcher.Event, map[string]time.Time) {
	byID := map[string][]byte{}
	stored := map[string]time.Time{}
	chains := map[string][]watcher.Event{}
	for _, m := range msgs {
		e, err := watcher.UnmarshalCloudEvent(m.Data)
		if err != nil {
			r.add("malformed", "", "stream seq %d on %s: %v", m.Seq, m.Subject, err)
			continue
		}
		key := e.Target.Region + "/" + e.InstanceID
		if want, err := e.Subject(prefix); err != nil || want != m.Subject {
			r.add("malformed", key, "event %s stored on subject %q, want %q (%v)", e.ID, m.Subject, want, err)
		}
		if m.MsgID != e.ID {
			r.add("malformed", key, "event %s has Nats-Msg-Id %q", e.ID, m.MsgID)
		}
		if want := watcher.EventID(e.Target, e.InstanceID, e.Sequence, e.From, e.To); e.ID != want {
			r.add("malformed", key, "event id %s is not the transition's id %s", e.ID, want)
		}
		if prev, ok := byID[e.ID]; ok {
			if bytes.Equal(prev, m.Data) {
				r.add("duplicate", key, "event %s (#%d %s->%s) stored twice (stream seq %d)", e.ID, e.Sequence, e.From, e.To, m.Seq)
			} else {
				r.add("conflict", key, "event id %s stored with two different contents (stream seq %d)", e.ID, m.Seq)
			}
			continue
		}
		byID[e.ID] = m.Data
		if !m.Time.IsZero() {
			stored[e.ID] = m.Time
		}
		chains[key] = append(chains[key], e)
		r.Events++
		if r.First.IsZero() || e.ObservedAt.Before(r.First) {
			r.First = e.ObservedAt
		}
		if e.ObservedAt.After(r.Last) {
			r.Last = e.ObservedAt
		}
	}
	return chains, stored
}

// checkChain verifies contiguous sequences from 1 and From == previous To.
func checkChain(key string, evs []watcher.Event, opts Options, r *Report) {
	for i, e := range evs {
		if i == 0 {
			if e.Sequence != 1 {
				r.add("chain", key, "first event has sequence %d, want 1", e.Sequence)
			}
			if announced(opts) && e.From != watcher.Absent {
				r.add("chain", key, "first event starts from %s, want ABSENT (announced baseline)", e.From)
			}
			continue
		}
		p := evs[i-1]
		if e.Sequence != p.Sequence+1 {
			r.add("chain", key, "sequence %d follows %d", e.Sequence, p.Sequence)
		}
		if e.From != p.To {
			r.add("chain", key, "event #%d from %s follows an event to %s", e.Sequence, e.From, p.To)
		}
		if e.ObservedAt.Before(p.ObservedAt) {
			r.add("chain", key, "event #%d observed at %s before event #%d at %s", e.Sequence, ts(e.ObservedAt), p.Sequence, ts(p.ObservedAt))
		}
	}
}

func announced(opts Options) bool { return opts.Announced }

// baselineKnown reports whether the options say how the baseline was taken.
func baselineKnown(opts Options) bool { return opts.Announced || !opts.BaselineEnd.IsZero() }

func (r *Report) add(kind, instance, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{Kind: kind, Instance: instance, Detail: fmt.Sprintf(format, args...)})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

// String lists the report: its summary and up to max violations.
func (r Report) String() string {
	var b strings.Builder
	b.WriteString(r.Summary())
	for i, v := range r.Violations {
		if i == 50 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(r.Violations)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}
