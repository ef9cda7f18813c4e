package cvmsim

import (
	"testing"
	"time"
)

// An answer never shows a state that History says was already left: churn
// transitions due by the time of a request are applied before it is
// answered, not only on the next churn tick. Found by the fault suite's
// oracle, which takes History as ground truth.
func TestDescribeAgreesWithHistory(t *testing.T) {
	s, err := newServer(Options{InstancesPerRegion: 200, Churn: 2000, DwellScale: 0.001, Seed: 9, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Start operations; their next steps fall due within milliseconds.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.advance(s.now())
		s.mu.Lock()
		n := len(s.fleet.pending)
		s.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("churn started no operation")
		}
	}
	s.mu.Lock()
	var due time.Time
	for _, in := range s.fleet.pending {
		if len(in.plan) > 0 && (due.IsZero() || in.plan[0].at.After(due)) {
			due = in.plan[0].at
		}
	}
	s.mu.Unlock()
	if due.IsZero() {
		t.Fatal("no churn step planned")
	}
	for deadline := time.Now().Add(5 * time.Second); !s.now().After(due); {
		if time.Now().After(deadline) {
			t.Fatal("the planned steps never fell due")
		}
		time.Sleep(time.Millisecond)
	}
	s.mu.Lock()
	asked := s.now()
	pg := s.describeLocked(envelope{action: ActionDescribeInstancesStatus, region: "ap-guangzhou"}, params{limit: 100, hasLimit: true}, faultMatch{})
	s.mu.Unlock()
	s.advance(s.now()) // the churn tick: whatever it records is dated when it fell due
	last := map[string]string{}
	for _, c := range s.History() {
		if !c.Time.After(asked) {
			last[c.InstanceID] = c.To
		}
	}
	for _, it := range pg.items {
		if got, want := it.inst.state, last[it.inst.id]; got != want {
			t.Errorf("%s answered %s, History says %s", it.inst.id, got, want)
		}
	}
}
