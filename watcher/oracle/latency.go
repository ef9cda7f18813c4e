package oracle

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Latency is how soon the events followed the true changes, and how many of
// the true changes they captured. Every figure is computed from the tie that
// the justification check makes between an event and the truth: the true
// segment the event left (its From) and the one it entered (its To, the
// earliest that fits its window). The true change of an event is the
// instance's entry into that segment, at the time the simulator recorded.
//
// Only true changes made after Since and no later than Until count, in
// every figure: the events of changes made during a silent baseline are
// not detections, and a change near the end of the history may not have
// been reported yet.
type Latency struct {
	// Since is Options.BaselineEnd (zero: from the start of the history).
	Since time.Time `json:"since,omitzero"`
	// Until is Options.Until, else Options.End, else the last event's
	// observation.
	Until time.Time `json:"until"`
	// Cycle is the time between two scans of an instance (Options.Cycle, or
	// derived from Options.Scans); zero: unknown, and no state has a bound.
	Cycle Seconds `json:"cycleSeconds"`
	// Transitional is about the changes out of a transitional state
	// (PENDING, STARTING, STOPPING, REBOOTING, TERMINATING, the entries and
	// exits of rescue mode and of a live migration, SERVICE_LIVE_MIGRATE);
	// Stable about the changes out of any other state, ABSENT (a creation)
	// and states the project does not know included.
	Transitional Class `json:"transitional"`
	Stable       Class `json:"stable"`
	// TransitionalToPresent is the part of Transitional whose changes
	// entered a present state (any but ABSENT): the class the hot set
	// serves, since a lookup by ID sees such a change but never proves an
	// absence. Disappearances holds every change into ABSENT, out of any
	// state (in practice TERMINATING): declared only by complete scans and
	// a lookup (DESIGN), so bounded by the scan cycle, not by the hot set.
	// Transitional is TransitionalToPresent plus the disappearances out of
	// a transitional state.
	TransitionalToPresent Class `json:"transitionalToPresent"`
	Disappearances        Class `json:"disappearances"`
	// States has, per state entered in the span, how many of its true
	// segments appear in the chains, sorted by state.
	States []StateCapture `json:"states"`
}

// Class holds the figures of one class of change. An event belongs to the
// class of its From: the state the watcher last saw the instance in, which
// is the true state it left (segment a), and also the state the true change
// came out of when no state was skipped. A true transition (the entry into
// segment k, out of segment k-1) belongs to the class of segment k-1.
// TransitionalToPresent and Disappearances also look at the state entered:
// the event's To, the true transition's segment k.
type Class struct {
	// Detection is the distribution of ObservedAt minus the true change's
	// time, over the events whose true change is in the span.
	Detection Distribution `json:"detection"`
	// Stored is the distribution of the time the stream stored the event
	// (its first copy; Message.Time) minus the true change's time, over the
	// same events where the store time is known.
	Stored Distribution `json:"stored"`
	// Changes counts the true transitions of the class in the span.
	Changes int `json:"changes"`
	// Captured counts those that appear as their own event: an event that
	// left segment k-1 and entered segment k, with nothing skipped between.
	// A transition skipped inside a longer window (RUNNING -> STOPPED over a
	// STOPPING nobody saw) is not captured, and neither is one that was
	// never reported (a REBOOTING between two scans).
	Captured int `json:"captured"`
	// Rate is Captured / Changes (0 without changes).
	Rate float64 `json:"rate"`
}

// StateCapture is how often one state was seen when it was entered.
type StateCapture struct {
	State watcher.State `json:"state"`
	// Entered counts the true segments in this state that began in the
	// span; Seen those that an event entered (with or without skipping the
	// states before it). Rate is Seen / Entered. A segment that repeats the
	// state before a missed one (RUNNING after a REBOOTING between two
	// scans) is read by the scans but entered by no event: the chain holds
	// one RUNNING throughout. Such segments count as not seen, and Bound
	// does not foresee them: RUNNING's Rate falls short of its Bound by the
	// reboots missed.
	Entered int     `json:"entered"`
	Seen    int     `json:"seen"`
	Rate    float64 `json:"rate"`
	// Bound is what a poller that reads each instance once per Cycle, at a
	// random phase, would see: the mean over the segments of min(1, d /
	// Cycle), where d is how long the segment was held (for a segment not
	// left yet, until Options.End, else the last event's observation).
	// Zero when Cycle is unknown.
	Bound float64 `json:"bound"`
}

// Distribution summarises durations by nearest rank: Pq is the smallest
// value v such that at least q% of the values are <= v. All zero when N is 0.
type Distribution struct {
	N   int     `json:"n"`
	P50 Seconds `json:"p50"`
	P90 Seconds `json:"p90"`
	P99 Seconds `json:"p99"`
	Max Seconds `json:"max"`
}

// Seconds is a duration that encodes in JSON as a number of seconds, to the
// millisecond.
type Seconds time.Duration

// MarshalJSON encodes s as seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Seconds(), 'f', 3, 64), nil
}

// UnmarshalJSON decodes a number of seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("seconds %s: not a finite number", b)
	}
	*s = Seconds(math.Round(f * 1e9))
	return nil
}

// String formats s as a duration rounded to the millisecond.
func (s Seconds) String() string { return time.Duration(s).Round(time.Millisecond).String() }

// distribution summarises ds (reordered in place).
func distribution(ds []time.Duration) Distribution {
	if len(ds) == 0 {
		return Distribution{}
	}
	slices.Sort(ds)
	rank := func(q int) Seconds { return Seconds(ds[(q*len(ds)+99)/100-1]) }
	return Distribution{N: len(ds), P50: rank(50), P90: rank(90), P99: rank(99), Max: Seconds(ds[len(ds)-1])}
}

// measure computes the Latency of the events tied to the truth by
// checkTruth; stored has the store time of each event id, last is the last
// event's observation.
func measure(tls map[string][]segment, chains map[string][]watcher.Event, matched map[string][]match,
	stored map[string]time.Time, opts Options, last time.Time) *Latency {
	l := &Latency{Since: opts.BaselineEnd, Until: cmp.Or(opts.Until, opts.End, last), Cycle: Seconds(cycle(opts))}
	inSpan := func(t time.Time) bool { return t.After(l.Since) && !t.After(l.Until) }
	heldUntil := cmp.Or(opts.End, last)
	classes := [4]*Class{&l.Transitional, &l.Stable, &l.TransitionalToPresent, &l.Disappearances}
	var detection, store [4][]time.Duration // per class, as classes
	// in returns the classes of a change from -> to, as indices of classes.
	in := func(from, to watcher.State) []int {
		c := []int{1}
		if from.Transitional() {
			c[0] = 0
			if to != watcher.Absent {
				c = append(c, 2)
			}
		}
		if to == watcher.Absent {
			c = append(c, 3)
		}
		return c
	}
	type tally struct {
		entered, seen int
		bound         float64
	}
	states := map[watcher.State]*tally{}
	for _, key := range sortedKeys(tls) {
		tl := tls[key]
		own := map[int]bool{}  // segments entered by an event that skipped nothing
		seen := map[int]bool{} // segments entered by an event
		for _, m := range matched[key] {
			seen[m.b] = true
			own[m.b] = own[m.b] || m.a == m.b-1
			change := tl[m.b].start
			if !inSpan(change) {
				continue
			}
			e := chains[key][m.event]
			for _, c := range in(e.From, e.To) {
				detection[c] = append(detection[c], e.ObservedAt.Sub(change))
				if at, ok := stored[e.ID]; ok {
					store[c] = append(store[c], at.Sub(change))
				}
			}
		}
		for k := 1; k < len(tl); k++ {
			if !inSpan(tl[k].start) {
				continue
			}
			for _, c := range in(tl[k-1].state, tl[k].state) {
				classes[c].Changes++
				if own[k] {
					classes[c].Captured++
				}
			}
			t := states[tl[k].state]
			if t == nil {
				t = &tally{}
				states[tl[k].state] = t
			}
			t.entered++
			if seen[k] {
				t.seen++
			}
			if l.Cycle > 0 {
				stop := cmp.Or(end(tl, k), heldUntil)
				t.bound += min(1, max(0, stop.Sub(tl[k].start).Seconds())/time.Duration(l.Cycle).Seconds())
			}
		}
	}
	for i, c := range classes {
		c.Detection, c.Stored = distribution(detection[i]), distribution(store[i])
		c.Rate = ratio(c.Captured, c.Changes)
	}
	for _, s := range slices.Sorted(maps.Keys(states)) {
		t := states[s]
		l.States = append(l.States, StateCapture{State: s, Entered: t.entered, Seen: t.seen,
			Rate: ratio(t.seen, t.entered), Bound: t.bound / float64(t.entered)})
	}
	return l
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// cycle returns opts.Cycle, else the median interval between the starts of
// consecutive scans of a region in opts.Scans, else zero.
func cycle(opts Options) time.Duration {
	if opts.Cycle > 0 {
		return opts.Cycle
	}
	starts := map[string][]time.Time{}
	for _, s := range opts.Scans {
		starts[s.Region] = append(starts[s.Region], s.Start)
	}
	var gaps []time.Duration
	for _, ss := range starts {
		slices.SortFunc(ss, time.Time.Compare)
		for i := 1; i < len(ss); i++ {
			gaps = append(gaps, ss[i].Sub(ss[i-1]))
		}
	}
	if len(gaps) == 0 {
		return 0
	}
	return time.Duration(distribution(gaps).P50)
}

// Lines renders l for a person, one figure per line.
func (l Latency) Lines() []string {
	cyc := "unknown"
	if l.Cycle > 0 {
		cyc = l.Cycle.String()
	}
	out := []string{fmt.Sprintf("true changes after %s until %s, scan cycle %s", tsLong(l.Since), tsLong(l.Until), cyc)}
	dist := func(d Distribution) string {
		if d.N == 0 {
			return "n=0"
		}
		return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", d.N, d.P50, d.P90, d.P99, d.Max)
	}
	for _, c := range []struct {
		name string
		c    Class
	}{{"out of a transitional state", l.Transitional}, {"out of a stable state", l.Stable},
		{"out of a transitional state into a present state", l.TransitionalToPresent},
		{"disappearances (into ABSENT)", l.Disappearances}} {
		out = append(out,
			fmt.Sprintf("detection latency (observedAt - true change), %s: %s", c.name, dist(c.c.Detection)),
			fmt.Sprintf("store latency (stored - true change), %s: %s", c.name, dist(c.c.Stored)),
			fmt.Sprintf("capture (true transitions that are their own event), %s: %d of %d (%.1f%%)",
				c.name, c.c.Captured, c.c.Changes, 100*c.c.Rate))
	}
	for _, s := range l.States {
		line := fmt.Sprintf("state %s seen: %d of %d entered (%.1f%%)", s.State, s.Seen, s.Entered, 100*s.Rate)
		if l.Cycle > 0 {
			line += fmt.Sprintf(", bound min(1, d/cycle) %.1f%%", 100*s.Bound)
		}
		out = append(out, line)
	}
	return out
}

func tsLong(t time.Time) string {
	if t.IsZero() {
		return "the start"
	}
	return t.UTC().Format(time.RFC3339)
}
