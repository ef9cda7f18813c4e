package oracle

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// segment is one state of an instance's true history, entered at start.
// The first segment of every timeline is ABSENT since the beginning of time.
type segment struct {
	state watcher.State
	start time.Time
}

// timelines groups the truth by region/instanceId, restricted to opts.Regions
// and to changes made no later than opts.End (when set).
func timelines(truth []cvmsim.Change, opts Options) (map[string][]segment, int) {
	out := map[string][]segment{}
	n := 0
	for _, c := range truth {
		if len(opts.Regions) > 0 && !slices.Contains(opts.Regions, c.Region) {
			continue
		}
		if !opts.End.IsZero() && c.Time.After(opts.End) {
			continue
		}
		key := c.Region + "/" + c.InstanceID
		tl, ok := out[key]
		if !ok {
			tl = []segment{{state: watcher.Absent}}
		}
		out[key] = append(tl, segment{state: watcher.State(c.To), start: c.Time})
		n++
	}
	return out, n
}

// end returns when segment k of tl ended (the zero time: not yet).
func end(tl []segment, k int) time.Time {
	if k+1 < len(tl) {
		return tl[k+1].start
	}
	return time.Time{}
}

// match ties event number event of an instance's chain to its truth: the
// event left segment a and entered segment b (a < b; a == b-1 when no
// state was skipped).
type match struct{ event, a, b int }

// checkTruth verifies that every event is justified by the truth and, when
// opts.End is set, that nothing was lost. It returns the timelines and, per
// instance, the events it could tie to them.
func checkTruth(chains map[string][]watcher.Event, truth []cvmsim.Change, opts Options, r *Report) (map[string][]segment, map[string][]match) {
	tls, n := timelines(truth, opts)
	r.TruthSteps = n
	tol := opts.Tolerance
	matched := map[string][]match{}
	for _, key := range sortedKeys(chains) {
		tl, ok := tls[key]
		if !ok {
			tl = []segment{{state: watcher.Absent}}
		}
		cursor := 0
		for i, e := range chains[key] {
			a, b := justify(tl, cursor, e, i == 0, opts)
			r.Justified++
			if b < 0 {
				r.add("unjustified", key, "event #%d %s->%s window [%s, %s] is no step of the true history %s",
					e.Sequence, e.From, e.To, ts(e.PreviousObservedAt), ts(e.ObservedAt), history(tl, cursor, tol, e))
				continue
			}
			matched[key] = append(matched[key], match{event: i, a: a, b: b})
			cursor = b
		}
	}
	if !opts.End.IsZero() {
		for _, key := range sortedKeys(tls) {
			checkLoss(key, tls[key], chains[key], opts, r)
		}
	}
	return tls, matched
}

// justify returns the indexes of the truth segments that event e (the next
// one after the segment at cursor) left and entered, or -1, -1. It picks the
// earliest segment entered that fits, which leaves the most room to the
// events after it.
func justify(tl []segment, cursor int, e watcher.Event, first bool, opts Options) (int, int) {
	tol := opts.Tolerance
	for b := cursor + 1; b < len(tl); b++ {
		if tl[b].start.After(e.ObservedAt.Add(tol)) {
			return -1, -1 // entered after it was observed: too late, and so are the rest
		}
		if tl[b].state != e.To {
			continue
		}
		// The latest earlier segment in From: it must have been left after
		// the instance was last seen in it.
		for a := b - 1; a >= cursor; a-- {
			if tl[a].state != e.From {
				continue
			}
			if !e.PreviousObservedAt.IsZero() && tl[a+1].start.Before(e.PreviousObservedAt.Add(-tol)) {
				break // left From before it was last seen in it
			}
			if first && !announced(opts) && baselineKnown(opts) && e.From != watcher.Absent && !heldBy(tl, a, e.From, opts.BaselineStart.Add(-tol), opts.BaselineEnd.Add(tol)) {
				continue // the baseline cannot have seen this From
			}
			return a, b
		}
	}
	return -1, -1
}

// heldBy reports whether a segment of tl up to segment k was in state at
// some time in [from, to]. The baseline may have seen an earlier segment in
// state than the one a first event left: the instance left it and came back
// to it between two scans (a reboot between two looks), which is its one
// state throughout as far as a poller can tell.
func heldBy(tl []segment, k int, state watcher.State, from, to time.Time) bool {
	for j := range k + 1 {
		if tl[j].state == state && overlaps(tl, j, from, to) {
			return true
		}
	}
	return false
}

// overlaps reports whether segment k of tl was held at some time in [from, to].
func overlaps(tl []segment, k int, from, to time.Time) bool {
	if tl[k].start.After(to) {
		return false
	}
	e := end(tl, k)
	return e.IsZero() || !e.Before(from)
}

// scansWithin counts the scans of key's region that ran entirely within
// [start, stop].
func scansWithin(scans []ScanWindow, key string, start, stop time.Time) int {
	region, _, _ := strings.Cut(key, "/")
	n := 0
	for _, s := range scans {
		if s.Region == region && !s.Start.Before(start) && !s.End.After(stop) {
			n++
		}
	}
	return n
}

// heldDuring reports whether the instance was in state at some time in
// [from, to].
func heldDuring(tl []segment, state watcher.State, from, to time.Time) bool {
	for k := range tl {
		if tl[k].state == state && overlaps(tl, k, from, to) {
			return true
		}
	}
	return false
}

// checkLoss verifies the final state and the must-see states of one instance.
func checkLoss(key string, tl []segment, evs []watcher.Event, opts Options, r *Report) {
	final := tl[len(tl)-1].state
	if len(evs) > 0 || baselineKnown(opts) {
		r.FinalChecked++ // else an instance without events kept its unknown baseline state: nothing to compare
	}
	switch {
	case len(evs) > 0:
		if last := evs[len(evs)-1]; last.To != final {
			r.add("lost", key, "last event #%d ends in %s, the instance is %s %s", last.Sequence, last.To, final, history(tl, 0, 0, watcher.Event{}))
		}
	case announced(opts):
		if final != watcher.Absent {
			r.add("lost", key, "no event, the instance is %s %s", final, history(tl, 0, 0, watcher.Event{}))
		}
	case !baselineKnown(opts):
		// An instance without events kept its unknown baseline state.
	default:
		if !heldDuring(tl, final, opts.BaselineStart, opts.BaselineEnd) && (final != watcher.Absent || len(tl) > 1 && !tl[1].start.After(opts.BaselineEnd)) {
			r.add("lost", key, "no event, the instance is %s, which it was not at the baseline %s", final, history(tl, 0, 0, watcher.Event{}))
		}
	}
	if opts.MustSee <= 0 || !baselineKnown(opts) {
		return
	}
	for k := 1; k < len(tl); k++ {
		s := tl[k]
		stop := end(tl, k)
		if stop.IsZero() || stop.After(opts.End) {
			stop = opts.End
		}
		if s.state == watcher.Absent || stop.Sub(s.start) < opts.MustSee {
			continue
		}
		if !announced(opts) && !s.start.After(opts.BaselineEnd) {
			continue // part of the baseline
		}
		if len(opts.Scans) > 0 && scansWithin(opts.Scans, key, s.start, stop) < cmp.Or(opts.MustSeeScans, 3) {
			continue // the watcher was not scanning cleanly long enough to see it
		}
		if len(evs) == 0 && !announced(opts) && heldDuring(tl, s.state, opts.BaselineStart, opts.BaselineEnd) {
			continue // the baseline state, never left as far as a poller can tell
		}
		r.MustSeeChecked++
		if !seen(evs, s.state, s.start, stop, opts.Tolerance) {
			r.add("lost", key, "state %s held from %s to %s (%s) is not in the chain", s.state, ts(s.start), ts(stop), stop.Sub(s.start).Round(time.Millisecond))
		}
	}
}

// seen reports whether the chain held state at some time within [start,
// stop]: event i puts the chain in its To from its window's start
// (PreviousObservedAt) until the instance was last seen in it (the next
// event's PreviousObservedAt); a silent baseline's first From is held until
// the first event's window. A state left and re-entered between two scans
// is the chain's one state throughout.
func seen(evs []watcher.Event, state watcher.State, start, stop time.Time, tol time.Duration) bool {
	start, stop = start.Add(-tol), stop.Add(tol)
	if len(evs) > 0 && evs[0].From == state && !evs[0].PreviousObservedAt.Before(start) {
		return true
	}
	for i, e := range evs {
		if e.To != state || e.PreviousObservedAt.After(stop) {
			continue
		}
		if i == len(evs)-1 || !evs[i+1].PreviousObservedAt.Before(start) {
			return true
		}
	}
	return false
}

// history renders the truth from cursor on, for a violation's detail.
func history(tl []segment, cursor int, _ time.Duration, _ watcher.Event) string {
	s := "["
	for k := max(cursor, 0); k < len(tl); k++ {
		if k > cursor {
			s += " "
		}
		if k == cursor+12 {
			s += "..."
			break
		}
		s += string(tl[k].state) + "@" + ts(tl[k].start)
	}
	return s + "]"
}
