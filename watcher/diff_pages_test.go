package watcher

import (
	"slices"
	"testing"
	"time"
)

// DiffPages makes transitions and appearances (a tombstone's sequence going
// on) of what pages read, timed by each page, once per instance, and
// nothing of an instance in its snapshot state; DiffLookup, given the same
// sightings, leaves unknown IDs and tombstones to the scans.
func TestDiffPages(t *testing.T) {
	snap := NewSnapshot()
	f := fleet{"ins-a": StateRunning, "ins-b": StateStopping, "ins-c": StateRunning}
	cycle(snap, scanOf(f, 0), f, DefaultPolicy())
	delete(f, "ins-c")
	cycle(snap, scanOf(f, 1), f, DefaultPolicy())
	if c := cycle(snap, scanOf(f, 2), f, DefaultPolicy()); !slices.Equal(transitions(c), []string{"ins-c RUNNING->ABSENT #1"}) {
		t.Fatalf("set-up: ins-c not gone: %v", transitions(c))
	}

	p1 := Page{Started: t0.Add(3*time.Minute + 100*time.Millisecond), Done: t0.Add(3*time.Minute + 400*time.Millisecond),
		Observations: []Observation{
			{InstanceID: "ins-new", State: StatePending}, {InstanceID: "ins-a", State: StateStopping},
			{InstanceID: "ins-b", State: StateStopping}, {InstanceID: "ins-c", State: StatePending},
		}}
	p2 := Page{Started: t0.Add(3*time.Minute + 200*time.Millisecond), Done: t0.Add(3*time.Minute + 900*time.Millisecond),
		Observations: []Observation{{InstanceID: "ins-a", State: StateStarting}}}
	c := DiffPages(snap, tgt, []Page{p1, p2})
	want := []string{"ins-a RUNNING->STOPPING #1", "ins-c ABSENT->PENDING #2", "ins-new ABSENT->PENDING #1"}
	if got := transitions(c); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	for _, e := range c.Events {
		if got, want := e.ObservedAt, p1.Done; !got.Equal(want) {
			t.Errorf("%s observed at %v, want its page's end %v", e.InstanceID, got, want)
		}
	}
	if got, want := c.Events[0].PreviousObservedAt, t0.Add(2*time.Minute); !got.Equal(want) {
		t.Errorf("ins-a previousObservedAt = %v, want the last scan's start %v", got, want)
	}
	if !c.Events[1].PreviousObservedAt.IsZero() || !c.Events[2].PreviousObservedAt.IsZero() {
		t.Error("an appearance has a previousObservedAt")
	}
	for _, r := range c.Put {
		if got, want := r.LastSeen, p1.Started; !got.Equal(want) {
			t.Errorf("%s last seen %v, want its page's start %v", r.InstanceID, got, want)
		}
	}
	if got, want := c.Meta, snap.Meta(); got != want {
		t.Errorf("meta = %+v, want the snapshot's %+v: the scan commits later", got, want)
	}

	c = DiffLookup(snap, tgt, p1.Observations, p1.Started, p1.Done)
	if got, want := transitions(c), []string{"ins-a RUNNING->STOPPING #1"}; !slices.Equal(got, want) {
		t.Fatalf("DiffLookup events = %v, want %v", got, want)
	}
}
