package watcher

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var (
	tgt = Target{Account: "prod", Region: "ap-guangzhou"}
	t0  = time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
)

// fleet is a test's view of the truth: id -> state.
type fleet map[string]State

// scanOf lists f completely at minute n.
func scanOf(f fleet, n int) Scan {
	s := Scan{Target: tgt, Complete: true, Stats: ScanStats{Started: t0.Add(time.Duration(n) * time.Minute), Duration: time.Second}}
	for id, st := range f {
		s.Observations = append(s.Observations, Observation{InstanceID: id, State: st})
	}
	slices.SortFunc(s.Observations, func(a, b Observation) int { return cmpString(a.InstanceID, b.InstanceID) })
	return s
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cycle runs one full diff as the loop does, answering the lookup from
// truth, and applies the commit.
func cycle(snap *Snapshot, scan Scan, truth fleet, p Policy) Commit {
	d := Diff(snap, scan, p)
	var lr LookupResult
	for _, id := range d.Candidates() {
		if st, ok := truth[id]; ok {
			lr.Found = append(lr.Found, Observation{InstanceID: id, State: st})
		} else {
			lr.Absent = append(lr.Absent, id)
		}
	}
	at := scan.Stats.Started.Add(scan.Stats.Duration)
	c := d.Resolve(lr, at, at.Add(time.Millisecond))
	snap.Apply(c, scan)
	return c
}

func transitions(c Commit) []string {
	var out []string
	for _, e := range c.Events {
		out = append(out, fmt.Sprintf("%s %s->%s #%d", e.InstanceID, e.From, e.To, e.Sequence))
	}
	return out
}

func TestDiffSilentBaseline(t *testing.T) {
	snap := NewSnapshot()
	c := cycle(snap, scanOf(fleet{"ins-a": StateRunning, "ins-b": StateStopped}, 0), nil, DefaultPolicy())
	if len(c.Events) != 0 {
		t.Fatalf("baseline produced events: %v", transitions(c))
	}
	if got, want := len(c.Put), 2; got != want {
		t.Fatalf("baseline put %d records, want %d", got, want)
	}
	if !c.Meta.Baselined {
		t.Fatal("complete first scan did not baseline the target")
	}
}

func TestDiffAnnouncedBaseline(t *testing.T) {
	p := DefaultPolicy()
	p.AnnounceBaseline = true
	c := cycle(NewSnapshot(), scanOf(fleet{"ins-a": StateRunning}, 0), nil, p)
	if got, want := transitions(c), []string{"ins-a ABSENT->RUNNING #1"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestDiffTransitionsAndAppearances(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())

	f["ins-a"] = StateStopped
	f["ins-c"] = StatePending
	c := cycle(snap, scanOf(f, 1), f, DefaultPolicy())
	want := []string{"ins-a RUNNING->STOPPED #1", "ins-c ABSENT->PENDING #1"}
	if got := transitions(c); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	e := c.Events[0]
	if got, want := e.PreviousObservedAt, t0; !got.Equal(want) {
		t.Errorf("previousObservedAt = %v, want the start of the scan that last saw it, %v", got, want)
	}
	if got, want := e.ObservedAt, t0.Add(time.Minute+time.Second); !got.Equal(want) {
		t.Errorf("observedAt = %v, want the end of the scan, %v", got, want)
	}
	if got, want := e.ID, EventID(tgt, "ins-a", 1, StateRunning, StateStopped); got != want {
		t.Errorf("id = %s, want %s", got, want)
	}
	if !c.Events[1].PreviousObservedAt.IsZero() {
		t.Error("an appearance has a previousObservedAt")
	}
	if got, want := len(c.Put), 2; got != want {
		t.Errorf("put %d records, want only the %d changed", got, want)
	}

	f["ins-a"] = StateStarting
	c = cycle(snap, scanOf(f, 2), f, DefaultPolicy())
	if got, want := transitions(c), []string{"ins-a STOPPED->STARTING #2"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestDiffNoChangeWritesNoRecord(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateStopped}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	c := cycle(snap, scanOf(f, 1), f, DefaultPolicy())
	if len(c.Put) != 0 || len(c.Events) != 0 || len(c.Delete) != 0 {
		t.Fatalf("unchanged scan commits %d puts, %d events, %d deletes", len(c.Put), len(c.Events), len(c.Delete))
	}
	if got, want := c.Meta.Scans, uint64(2); got != want {
		t.Errorf("meta.Scans = %d, want %d", got, want)
	}
}

func TestDiffDisappearanceNeedsTwoCompleteScansAndALookup(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateRunning, "ins-c": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	delete(f, "ins-b")

	c := cycle(snap, scanOf(f, 1), f, DefaultPolicy())
	if len(c.Events) != 0 {
		t.Fatalf("first miss produced events: %v", transitions(c))
	}
	if r, ok := snap.Get("ins-b"); !ok || r.Missing != 1 {
		t.Fatalf("missing = %d (known %v) after one miss, want 1", r.Missing, ok)
	}
	c = cycle(snap, scanOf(f, 2), f, DefaultPolicy())
	if got, want := transitions(c), []string{"ins-b RUNNING->ABSENT #1"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if r, ok := snap.Get("ins-b"); !ok || r.State != Absent || r.Sequence != 1 {
		t.Fatalf("record after disappearance = %+v, want a tombstone with sequence 1", r)
	}
	// A tombstone is not missing again, and a reappearing ID continues.
	c = cycle(snap, scanOf(f, 3), f, DefaultPolicy())
	if len(c.Events) != 0 || len(c.Put) != 0 {
		t.Fatalf("tombstone changed again: %v", transitions(c))
	}
	f["ins-b"] = StateRunning
	c = cycle(snap, scanOf(f, 4), f, DefaultPolicy())
	if got, want := transitions(c), []string{"ins-b ABSENT->RUNNING #2"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestDiffLookupThatFindsTheInstanceIsNoDisappearance(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	listing := fleet{"ins-a": StateRunning} // paging missed ins-b, which exists
	cycle(snap, scanOf(listing, 1), f, DefaultPolicy())
	f["ins-b"] = StateStopped
	c := cycle(snap, scanOf(listing, 2), f, DefaultPolicy())
	if got, want := transitions(c), []string{"ins-b RUNNING->STOPPED #1"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (the lookup's state, never ABSENT)", got, want)
	}
	if r, ok := snap.Get("ins-b"); !ok || r.Missing != 0 {
		t.Errorf("missing = %d (known %v) after the lookup found it, want 0", r.Missing, ok)
	}
}

func TestDiffIncompleteScanInfersNoAbsence(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	for n := 1; n <= 5; n++ {
		s := scanOf(fleet{"ins-a": StateStopped}, n)
		s.Complete = false
		c := cycle(snap, s, fleet{}, DefaultPolicy())
		for _, e := range c.Events {
			if e.To == Absent {
				t.Fatalf("incomplete scan %d produced %v", n, transitions(c))
			}
		}
	}
	if r, ok := snap.Get("ins-a"); !ok || r.State != StateStopped {
		t.Errorf("incomplete scan did not update the state it saw: %+v", r)
	}
	if r, ok := snap.Get("ins-b"); !ok || r.Missing != 0 || r.State != StateRunning {
		t.Errorf("incomplete scans touched an unlisted instance: %+v", r)
	}
}

func TestDiffUnreadableInstanceIsNotMissing(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	for n := 1; n <= 3; n++ {
		s := scanOf(fleet{"ins-a": StateRunning}, n)
		s.Unreadable = []string{"ins-b"}
		if c := cycle(snap, s, fleet{"ins-a": StateRunning}, DefaultPolicy()); len(c.Events) != 0 {
			t.Fatalf("unreadable instance produced %v", transitions(c))
		}
	}
}

func TestDiffMassDisappearanceIsHeld(t *testing.T) {
	p := DefaultPolicy()
	snap := NewSnapshot()
	f := fleet{}
	for i := range 20 {
		f[fmt.Sprintf("ins-%08d", i)] = StateRunning
	}
	cycle(snap, scanOf(f, 0), f, p)
	empty := fleet{}
	for n := 1; n < p.MassConfirmScans; n++ {
		d := Diff(snap, scanOf(empty, n), p)
		if n >= p.ConfirmScans && (!d.Mass() || d.Held() != 20) {
			t.Fatalf("scan %d: mass=%v held=%d, want all 20 held", n, d.Mass(), d.Held())
		}
		if c := cycle(snap, scanOf(empty, n), empty, p); len(c.Events) != 0 {
			t.Fatalf("scan %d of a mass disappearance produced %d events", n, len(c.Events))
		}
	}
	c := cycle(snap, scanOf(empty, p.MassConfirmScans), empty, p)
	if got, want := len(c.Events), 20; got != want {
		t.Fatalf("after %d scans the persisting disappearance gave %d events, want %d", p.MassConfirmScans, got, want)
	}
}

func TestDiffMassHoldReleasedWhenInstancesReturn(t *testing.T) {
	p := DefaultPolicy()
	snap := NewSnapshot()
	f := fleet{}
	for i := range 20 {
		f[fmt.Sprintf("ins-%08d", i)] = StateRunning
	}
	cycle(snap, scanOf(f, 0), f, p)
	for n := 1; n <= 4; n++ {
		cycle(snap, scanOf(fleet{}, n), fleet{}, p) // an empty listing glitch
	}
	if c := cycle(snap, scanOf(f, 5), f, p); len(c.Events) != 0 {
		t.Fatalf("glitch recovery produced events: %v", transitions(c))
	}
	for id := range f {
		if r, ok := snap.Get(id); !ok || r.Missing != 0 {
			t.Fatalf("%s still missing %d (known %v) after it came back", id, r.Missing, ok)
		}
	}
}

func TestDiffTombstoneRetention(t *testing.T) {
	p := DefaultPolicy()
	p.TombstoneRetention = time.Hour
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning}
	cycle(snap, scanOf(f, 0), f, p)
	delete(f, "ins-a")
	cycle(snap, scanOf(f, 1), f, p)
	cycle(snap, scanOf(f, 2), f, p)
	if r, ok := snap.Get("ins-a"); !ok || r.State != Absent {
		t.Fatalf("no tombstone: %+v", r)
	}
	c := cycle(snap, scanOf(f, 200), f, p)
	if !slices.Equal(c.Delete, []string{"ins-a"}) {
		t.Fatalf("delete = %v, want the expired tombstone", c.Delete)
	}
	if _, ok := snap.Get("ins-a"); ok {
		t.Fatal("expired tombstone still in the snapshot")
	}
}

func TestDiffDoesNotChangeItsInputs(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	before, ok := snap.Get("ins-a")
	if !ok {
		t.Fatal("ins-a not in the snapshot after its baseline")
	}
	d := Diff(snap, scanOf(fleet{"ins-a": StateStopped}, 1), DefaultPolicy())
	d.Resolve(LookupResult{}, t0, t0)
	if after, _ := snap.Get("ins-a"); after != before {
		t.Fatalf("Diff changed the snapshot: %+v -> %+v", before, after)
	}
}
