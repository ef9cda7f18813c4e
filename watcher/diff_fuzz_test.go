package watcher

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Scripts (see runDiffScript) the id checks of FuzzDiffInvariants need, pinned
// by TestDiffScriptSeeds so they keep producing what they are named for.
var (
	// repeatedTransition: after its baseline, one instance goes RUNNING ->
	// STOPPED -> RUNNING -> STOPPED: the same from and to at sequences 1
	// and 3, which must not share an id.
	repeatedTransition = []byte{0, 0, 0, 8, 0, 0, 0, 8}
	// twoEventsInOneCommit: a state change and a confirmed disappearance
	// in the same cycle, so an id must not depend on its event's place in
	// the commit.
	twoEventsInOneCommit = []byte{0, 0, 0, 1, 1, 0, 0, 9}
)

// FuzzDiffInvariants drives a small fleet through a random history of
// scans (complete or not) and checks, after every cycle:
//   - applying the events to the old snapshot gives the new one;
//   - no event for an instance listed in its recorded state;
//   - sequences are contiguous and each From is the recorded state;
//   - an incomplete scan never produces a disappearance;
//   - every event's id is the id of the transition the inputs call for
//     (recorded state and sequence, listed or looked-up state);
//   - the same cycle replayed later on an equal snapshot reloaded as after a
//     restart gives the same events with the same ids;
//   - no two different transitions of the run share an id.
func FuzzDiffInvariants(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{255, 0, 255, 0, 128, 3, 3, 3, 3, 3, 3, 3, 3})
	f.Add([]byte("a mass disappearance and a return"))
	f.Add(repeatedTransition)
	f.Add(twoEventsInOneCommit)
	f.Fuzz(func(t *testing.T, script []byte) {
		runDiffScript(t, script)
	})
}

func TestDiffScriptSeeds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script []byte
		want   []string // per cycle, its events
	}{
		{"repeated transition", repeatedTransition, []string{
			"",
			"ins-00000000 RUNNING->STOPPED #1",
			"ins-00000000 STOPPED->RUNNING #2",
			"ins-00000000 RUNNING->STOPPED #3",
		}},
		{"two events in one commit", twoEventsInOneCommit, []string{
			"",
			"ins-00000001 ABSENT->RUNNING #1",
			"",
			"ins-00000000 RUNNING->ABSENT #1, ins-00000001 RUNNING->STOPPED #2",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range runDiffScript(t, tc.script) {
				var evs []string
				for _, e := range c.Events {
					evs = append(evs, fmt.Sprintf("%s %s->%s #%d", e.InstanceID, e.From, e.To, e.Sequence))
				}
				got = append(got, strings.Join(evs, ", "))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("events by cycle = %q, want %q", got, tc.want)
			}
		})
	}
}

// scriptIDs are runDiffScript's fleet: six canonical IDs, which the
// snapshot packs, and two it must keep as strings (see packID).
var scriptIDs = [8]string{
	"ins-00000000", "ins-00000001", "ins-00000002", "ins-00000003", "ins-00000004", "ins-0000000z",
	"ins-0000000A", "ins-é/\x00{}",
}

// runDiffScript plays script, two bytes a cycle, against a fleet of 8
// instances (scriptIDs), checks every cycle (see FuzzDiffInvariants) and
// returns the commits.
func runDiffScript(t *testing.T, script []byte) []Commit {
	t.Helper()
	states := []State{StateRunning, StateStopped, StatePending, "HIBERNATING"}
	p := DefaultPolicy()
	p.MassMinInstances = 4
	p.MassConfirmScans = 3
	snap := NewSnapshot()
	truth := fleet{}
	var commits []Commit
	transitionOf := map[string]string{} // event id -> its transition
	for step := 0; len(script) >= 2; step++ {
		op, arg := script[0], script[1]
		script = script[2:]
		id := scriptIDs[arg%8]
		switch op % 4 {
		case 0:
			truth[id] = states[int(arg/8)%len(states)]
		case 1:
			delete(truth, id)
		}
		listing := fleet{}
		for k, v := range truth {
			if op%4 != 3 || k != id { // op 3: the listing misses one instance
				listing[k] = v
			}
		}
		scan := scanOf(listing, step)
		scan.Complete = op%5 != 4
		old := map[string]Record{}
		snap.walk(nil, nil, func(id string, _ snapRecord) {
			old[id], _ = snap.Get(id)
		})
		restarted := reload(t, old, snap.Meta())
		c := cycle(snap, scan, truth, p)
		checkCommit(t, old, snap, scan, truth, c)

		// A replay of the same cycle much later (a crash before the commit,
		// then a restart from the store) must give the same transitions with
		// the same ids.
		late := scan
		late.Stats.Started = late.Stats.Started.Add(90 * time.Minute)
		if got, want := eventKeys(cycle(restarted, late, truth, p)), eventKeys(c); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d replayed later from an equal snapshot: events %q, want %q", step, got, want)
		}

		for _, e := range c.Events {
			tr := fmt.Sprintf("%s %s->%s #%d", e.InstanceID, e.From, e.To, e.Sequence)
			if prev, ok := transitionOf[e.ID]; ok && prev != tr {
				t.Fatalf("transitions %q and %q share the id %s", prev, tr, e.ID)
			}
			transitionOf[e.ID] = tr
		}
		commits = append(commits, c)
	}
	return commits
}

// reload builds a snapshot from records and meta as a restart loads one from
// the store.
func reload(t *testing.T, records map[string]Record, meta ScanMeta) *Snapshot {
	t.Helper()
	s, err := LoadSnapshot(func(fn func(Record) error) (ScanMeta, error) {
		for _, r := range records {
			if err := fn(r); err != nil {
				return ScanMeta{}, err
			}
		}
		return meta, nil
	})
	if err != nil {
		t.Fatalf("LoadSnapshot: %v", err)
	}
	return s
}

// eventKeys lists c's events by what is the same across replays: the
// transition and its id, not the times.
func eventKeys(c Commit) []string {
	var out []string
	for _, e := range c.Events {
		out = append(out, fmt.Sprintf("%s %s->%s #%d id=%s", e.InstanceID, e.From, e.To, e.Sequence, e.ID))
	}
	return out
}

func checkCommit(t *testing.T, old map[string]Record, snap *Snapshot, scan Scan, truth fleet, c Commit) {
	t.Helper()
	listed := map[string]State{}
	for _, o := range scan.Observations {
		listed[o.InstanceID] = o.State
	}
	evented := map[string]bool{}
	for _, e := range c.Events {
		if evented[e.InstanceID] {
			t.Fatalf("two events for %s in one commit", e.InstanceID)
		}
		evented[e.InstanceID] = true
		prev, known := old[e.InstanceID]
		from := Absent
		if known {
			from = prev.State
		}
		if e.From != from {
			t.Fatalf("event %s from %s, but the record said %s", e.InstanceID, e.From, from)
		}
		if e.Sequence != prev.Sequence+1 {
			t.Fatalf("event %s sequence %d after %d", e.InstanceID, e.Sequence, prev.Sequence)
		}
		if e.From == e.To {
			t.Fatalf("event %s %s -> %s changes nothing", e.InstanceID, e.From, e.To)
		}
		if e.To == Absent && !scan.Complete {
			t.Fatalf("incomplete scan produced disappearance of %s", e.InstanceID)
		}
		// The state the inputs say the instance went to: the listing's, or
		// for an instance missing from it, the lookup's (cycle answers it
		// from truth), or gone.
		to, ok := listed[e.InstanceID]
		if !ok {
			if to, ok = truth[e.InstanceID]; !ok {
				to = Absent
			}
		}
		if e.To != to {
			t.Fatalf("event %s -> %s, but the inputs say %s", e.InstanceID, e.To, to)
		}
		if want := EventID(scan.Target, e.InstanceID, prev.Sequence+1, from, to); e.ID != want {
			t.Fatalf("event %s %s -> %s #%d has id %s, want %s", e.InstanceID, from, to, prev.Sequence+1, e.ID, want)
		}
		if now, _ := snap.Get(e.InstanceID); now.State != e.To || now.Sequence != e.Sequence {
			t.Fatalf("snapshot after %s -> %s #%d holds %+v", e.From, e.To, e.Sequence, now)
		}
		if !e.PreviousObservedAt.IsZero() && e.PreviousObservedAt.After(e.ObservedAt) {
			t.Fatalf("event %s window [%v, %v] is inverted", e.InstanceID, e.PreviousObservedAt, e.ObservedAt)
		}
	}
	for id, st := range listed {
		if prev, ok := old[id]; ok && prev.State == st && evented[id] {
			t.Fatalf("event for %s listed in its recorded state %s", id, st)
		}
	}
	// Instances without an event keep their state.
	for id, prev := range old {
		if evented[id] {
			continue
		}
		if now, ok := snap.Get(id); ok && now.State != prev.State {
			t.Fatalf("%s changed %s -> %s without an event", id, prev.State, now.State)
		}
	}
}
