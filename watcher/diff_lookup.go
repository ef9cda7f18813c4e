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
	d := &Pending{snap: snap, scan: Scan{Target: tg}}
	seen, at := floorMillis(started), ceilMillis(done)
	moved := map[string]bool{}
	for _, o := range found {
		rec, ok := snap.records[o.InstanceID]
		if !ok || rec.state == absentIdx || snap.stateOf(rec) == o.State || moved[o.InstanceID] {
			continue
		}
		moved[o.InstanceID] = true
		d.transition(o.InstanceID, snap.record(o.InstanceID, rec), o.State, at, seen)
	}
	slices.SortFunc(d.puts, func(a, b Record) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	slices.SortFunc(d.events, func(a, b Event) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return Commit{Put: d.puts, Events: d.events, Meta: snap.meta}
}
