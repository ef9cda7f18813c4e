package watcher

import (
	"fmt"
	"testing"
)

// FuzzDiffInvariants drives a small fleet through a random history of
// scans (complete or not) and checks, after every cycle:
//   - applying the events to the old snapshot gives the new one;
//   - no event for an instance listed in its recorded state;
//   - sequences are contiguous and each From is the recorded state;
//   - an incomplete scan never produces a disappearance;
//   - every event has the stable ID of its transition.
func FuzzDiffInvariants(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{255, 0, 255, 0, 128, 3, 3, 3, 3, 3, 3, 3, 3})
	f.Add([]byte("a mass disappearance and a return"))
	states := []State{StateRunning, StateStopped, StatePending, "HIBERNATING"}
	f.Fuzz(func(t *testing.T, script []byte) {
		p := DefaultPolicy()
		p.MassMinInstances = 4
		p.MassConfirmScans = 3
		snap := NewSnapshot()
		truth := fleet{}
		for step := 0; len(script) >= 2; step++ {
			op, arg := script[0], script[1]
			script = script[2:]
			id := fmt.Sprintf("ins-%08d", arg%8)
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
			for k := range snap.records {
				old[k], _ = snap.Get(k)
			}
			c := cycle(snap, scan, truth, p)
			checkCommit(t, old, snap, scan, c)
		}
	})
}

func checkCommit(t *testing.T, old map[string]Record, snap *Snapshot, scan Scan, c Commit) {
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
		if e.ID != EventID(e.Target, e.InstanceID, e.Sequence, e.From, e.To) {
			t.Fatalf("event %s has an unstable id", e.InstanceID)
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
