package watcher

import (
	"slices"
	"strings"
	"time"
)

// DiffLookup compares what a hot lookup found with the snapshot, as Diff
// does for a scan, and returns the commit. It is pure. A known, live
// instance found in another state is a transition, observed at done, with
// the instance last seen in its old state at its previous sighting (the
// previous lookup or scan) and seen in the new one no later than started.
// Nothing else is inferred: an unknown ID or a tombstone is left to the
// scans, an instance the lookup did not find is not missing (a lookup never
// proves an absence), and the metadata is the snapshot's (a lookup is not a
// scan).
func DiffLookup(snap *Snapshot, tg Target, found []Observation, started, done time.Time) Commit {
	return diffSightings(snap, tg, []Page{{Observations: found, Started: started, Done: done}}, false)
}

// DiffPages compares what pages of a scan still in flight read with the
// snapshot, and returns the commit. It is pure. A known, live instance
// read in another state is a transition, as in DiffLookup, observed at its
// page's Done and seen in the new state no later than its page's Started.
// An unknown ID or a tombstone is an appearance (ABSENT -> state), timed
// the same way: the window Diff gives an appearance, with the page in the
// place of the scan (a page proves the instance existed while it was
// read). Nothing is missing (only a complete scan can say so), an instance
// read twice counts once (at its first page), and the metadata is the
// snapshot's: the scan itself commits later. The caller filters what it
// wants committed early; DiffPages trusts every observation.
func DiffPages(snap *Snapshot, tg Target, pages []Page) Commit {
	return diffSightings(snap, tg, pages, true)
}

// diffSightings is DiffLookup's and DiffPages' diff; appear says whether an
// unknown ID or a tombstone is an appearance or left alone.
func diffSightings(snap *Snapshot, tg Target, pages []Page, appear bool) Commit {
	d := &Pending{snap: snap, scan: Scan{Target: tg}}
	moved := map[string]bool{}
	for _, p := range pages {
		seen, at := floorMillis(p.Started), ceilMillis(p.Done)
		cur := snap.cursor()
		for _, o := range p.Observations {
			rec, _, ok := cur.find(o.InstanceID)
			if moved[o.InstanceID] || ok && snap.stateOf(rec) == o.State {
				continue
			}
			from := Record{InstanceID: o.InstanceID, State: Absent}
			switch {
			case !ok || rec.state == absentIdx:
				if !appear {
					continue
				}
				if ok {
					from = snap.record(o.InstanceID, rec) // a tombstone: its sequence goes on
				}
			default:
				from = snap.record(o.InstanceID, rec)
			}
			moved[o.InstanceID] = true
			d.transition(o.InstanceID, from, o.State, at, seen)
		}
	}
	slices.SortFunc(d.puts, func(a, b Record) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	slices.SortFunc(d.events, func(a, b Event) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return Commit{Put: d.puts, Events: d.events, Meta: snap.meta}
}
