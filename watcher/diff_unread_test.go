package watcher

import (
	"testing"
	"time"
)

// An instance listed without a usable state (a conflicting duplicate, a null
// state) in consecutive complete scans was not seen in its state by them:
// when it is read again in a new state, the event's window must start at
// its last real sighting, not at the latest complete scan. Found by the
// fault suite's oracle (TestFaultAPI/null_fields).
func TestDiffUnreadableKeepsLastSighting(t *testing.T) {
	tg := Target{Account: "a", Region: "r"}
	t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	scan := func(n int, obs []Observation, unreadable ...string) Scan {
		return Scan{Target: tg, Observations: obs, Unreadable: unreadable, Complete: true,
			Stats: ScanStats{Started: t0.Add(time.Duration(n) * time.Minute), Duration: time.Second}}
	}
	other := Observation{InstanceID: "ins-00000002", State: StateRunning}
	snap := NewSnapshot()
	step := func(s Scan) Commit {
		c := Diff(snap, s, DefaultPolicy()).Resolve(LookupResult{}, s.Stats.Started, s.Stats.Started)
		snap.Apply(c, s)
		// A restart between scans must not change the outcome.
		reloaded, err := LoadSnapshot(func(fn func(Record) error) (ScanMeta, error) {
			var err error
			snap.walk(nil, nil, func(id string, r snapRecord) {
				if err == nil {
					err = fn(snap.record(id, r))
				}
			})
			return snap.meta, err
		})
		if err != nil {
			t.Fatal(err)
		}
		snap = reloaded
		return c
	}
	step(scan(0, []Observation{{InstanceID: "ins-00000001", State: StateRunning}, other}))
	step(scan(1, []Observation{other}, "ins-00000001"))
	step(scan(2, []Observation{other}, "ins-00000001"))
	c := step(scan(3, []Observation{{InstanceID: "ins-00000001", State: StateStopped}, other}))
	if len(c.Events) != 1 {
		t.Fatalf("events = %+v, want one", c.Events)
	}
	if got, want := c.Events[0].PreviousObservedAt, t0; !got.Equal(want) {
		t.Fatalf("previousObservedAt = %v, want the last real sighting %v", got, want)
	}
}
