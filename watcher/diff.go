package watcher

import (
	"slices"
	"strings"
	"time"
)

// Diff compares a scan with the snapshot it follows. It is pure: it reads the
// snapshot and the scan and changes neither. Use it in three steps:
//
//	d := Diff(snap, scan, policy)
//	lookup, err := source.Lookup(ctx, d.Candidates())   // if any
//	commit := d.Resolve(lookup, lookupStarted, lookupDone)
//
// The rules:
//   - an instance listed in another state than its record: a transition;
//   - an unknown ID: an appearance (ABSENT -> state), except before the
//     target's first complete scan, which is a silent baseline unless the
//     policy announces it;
//   - only a complete scan can count an instance as missing; after
//     ConfirmScans consecutive misses it becomes a candidate, and only a
//     lookup by ID that does not find it makes it a disappearance;
//   - when more than MassFraction of a target is missing at once the
//     candidates are held until MassConfirmScans.
func Diff(snap *Snapshot, scan Scan, p Policy) *Pending {
	start := floorMillis(scan.Stats.Started)
	end := ceilMillis(scan.Stats.Started.Add(scan.Stats.Duration))
	d := &Pending{snap: snap, scan: scan, policy: p, start: start, end: end, misses: map[string]int{}}
	baselined := snap.meta.Baselined || p.AnnounceBaseline

	// liveListed counts live records the scan listed: when it equals the
	// live count, nothing is missing and the snapshot need not be walked.
	// Otherwise listed holds the records the scan listed.
	liveListed := 0
	var listed *snapMarks
	if scan.Complete && snap.meta.Baselined {
		listed = snap.marks()
	}
	cur := snap.cursor()
	for _, o := range scan.Observations {
		rec, slot, known := cur.find(o.InstanceID)
		if known && rec.state != absentIdx {
			liveListed++
		}
		if known && listed != nil {
			listed.mark(slot, o.InstanceID)
		}
		switch {
		case !known && !baselined:
			d.put(Record{InstanceID: o.InstanceID, State: o.State, Since: end, LastSeen: start})
		case !known:
			d.transition(o.InstanceID, Record{InstanceID: o.InstanceID, State: Absent}, o.State, end, start)
		case snap.stateOf(rec) != o.State:
			d.transition(o.InstanceID, snap.record(o.InstanceID, rec), o.State, end, start)
		case rec.missing != 0:
			r := snap.record(o.InstanceID, rec)
			r.Missing, r.LastSeen = 0, start
			d.put(r)
		}
	}
	cur = snap.cursor()
	for _, id := range scan.Unreadable {
		rec, slot, ok := cur.find(id)
		if !ok || rec.state == absentIdx {
			continue
		}
		liveListed++
		if listed != nil {
			listed.mark(slot, id)
		}
		// Listed, so not missing; but its state was not read, so its last
		// sighting must stay what it was (not this scan's start).
		if rec.missing >= 0 {
			r := snap.record(id, rec)
			r.Missing, r.Unread = 0, true
			d.put(r)
		}
	}

	// Absence: only from a complete scan of a target already baselined.
	if listed != nil && liveListed < snap.live {
		live := snap.live
		var missing []string
		isLive := func(r snapRecord) bool { return r.state != absentIdx }
		snap.walk(listed, isLive, func(id string, rec snapRecord) {
			missing = append(missing, id)
			d.misses[id] = int(max(rec.missing, 0)) + 1
		})
		slices.Sort(missing)
		threshold := p.ConfirmScans
		if live >= p.MassMinInstances && float64(len(missing)) > p.MassFraction*float64(live) {
			d.mass = true
			threshold = max(p.MassConfirmScans, p.ConfirmScans)
		}
		for _, id := range missing {
			switch n := d.misses[id]; {
			case n >= threshold:
				d.candidates = append(d.candidates, id)
			case d.mass && n >= p.ConfirmScans:
				d.held++
			}
		}
	}

	// Tombstones past retention go (unless the ID was just listed again).
	if p.TombstoneRetention > 0 && snap.tombstones > 0 {
		cutoff := toMillis(end.Add(-p.TombstoneRetention))
		reappeared := map[string]bool{}
		for _, r := range d.puts {
			reappeared[r.InstanceID] = true
		}
		expired := func(r snapRecord) bool { return r.state == absentIdx && r.lastSeen < cutoff }
		snap.walk(nil, expired, func(id string, _ snapRecord) {
			if !reappeared[id] {
				d.delete = append(d.delete, id)
			}
		})
		slices.Sort(d.delete)
	}
	return d
}

// Pending is a diff waiting for the lookup of its disappearance candidates.
type Pending struct {
	snap       *Snapshot
	scan       Scan
	policy     Policy
	start, end time.Time
	puts       []Record
	events     []Event
	delete     []string
	misses     map[string]int // missing instance -> consecutive misses now
	candidates []string
	held       int
	mass       bool
}

// Candidates returns, sorted, the instances that must be looked up by ID
// before they can be declared gone.
func (d *Pending) Candidates() []string { return slices.Clone(d.candidates) }

// Held counts missing instances whose disappearance is held back because
// they are part of a mass disappearance.
func (d *Pending) Held() int { return d.held }

// Mass reports whether this scan is missing a mass of the target.
func (d *Pending) Mass() bool { return d.mass }

// Resolve completes the diff with what a lookup of Candidates proved (an
// empty result if no lookup was made or it failed entirely) and returns the
// commit: changed records only, events sorted by instance ID, new metadata.
// A change the lookup reveals is observed at lookupDone, with the instance
// last seen in its old state no later than lookupStarted.
func (d *Pending) Resolve(lr LookupResult, lookupStarted, lookupDone time.Time) Commit {
	seen, at := floorMillis(lookupStarted), ceilMillis(lookupDone)
	absent := make(map[string]bool, len(lr.Absent))
	for _, id := range lr.Absent {
		absent[id] = true
	}
	found := make(map[string]State, len(lr.Found))
	for _, o := range lr.Found {
		found[o.InstanceID] = o.State
	}
	isCandidate := make(map[string]bool, len(d.candidates))
	for _, id := range d.candidates {
		isCandidate[id] = true
	}
	for _, id := range sortedKeys(d.misses) {
		r, _, _ := d.snap.find(id)
		rec := d.snap.record(id, r)
		n := d.misses[id]
		switch st, ok := found[id]; {
		case isCandidate[id] && absent[id]:
			d.transition(id, rec, Absent, at, at)
		case isCandidate[id] && ok && st != rec.State:
			d.transition(id, rec, st, at, seen)
		case isCandidate[id] && ok:
			rec.Missing, rec.LastSeen = 0, seen
			d.put(rec)
		default: // still missing, not (yet) provably gone
			rec.Missing = n
			d.put(rec)
		}
	}

	meta := d.snap.meta
	meta.Scans++
	meta.LastScan = d.start
	if d.scan.Complete {
		meta.CompleteScans++
		meta.LastComplete = d.start
		meta.Baselined = true
	}
	slices.SortFunc(d.puts, func(a, b Record) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	slices.SortFunc(d.events, func(a, b Event) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return Commit{Put: d.puts, Delete: d.delete, Events: d.events, Meta: meta}
}

// transition records an event from rec's state to `to`, observed at `at`,
// with the instance listed (or looked up) at `seen`.
func (d *Pending) transition(id string, rec Record, to State, at, seen time.Time) {
	seq := rec.Sequence + 1
	e := Event{
		ID:         EventID(d.scan.Target, id, seq, rec.State, to),
		Target:     d.scan.Target,
		InstanceID: id,
		From:       rec.State,
		To:         to,
		Sequence:   seq,
		ObservedAt: at,
	}
	if rec.State != Absent {
		e.PreviousObservedAt = rec.LastSeen
	}
	d.events = append(d.events, e)
	d.put(Record{InstanceID: id, State: to, Sequence: seq, Since: at, LastSeen: seen})
}

func (d *Pending) put(r Record) { d.puts = append(d.puts, r) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func floorMillis(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func ceilMillis(t time.Time) time.Time {
	f := t.Truncate(time.Millisecond)
	if f.Before(t) {
		f = f.Add(time.Millisecond)
	}
	return f.UTC()
}
