package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

var enrTarget = watcher.Target{Account: "acct", Region: "ap-guangzhou"}

// fleet is a fake Source and Enricher over one map of instances: what a
// scan lists and what DescribeInstances says agree, as on the real API.
type fleet struct {
	mu     sync.Mutex
	states map[string]watcher.State
	info   map[string]watcher.Enrichment
	// describe, if set, replaces Describe's answer (faults).
	describe func(ctx context.Context, ids []string) ([]watcher.Enrichment, error)
	asked    [][]string
}

func newFleet(n int) *fleet {
	f := &fleet{states: map[string]watcher.State{}, info: map[string]watcher.Enrichment{}}
	for i := range n {
		id := fmt.Sprintf("ins-%08d", i)
		f.states[id] = watcher.StateRunning
		f.info[id] = watcher.Enrichment{InstanceID: id, State: watcher.StateRunning,
			Instance:  watcher.Instance{Name: "web-" + id[4:], Zone: "ap-guangzhou-3", Tags: []watcher.Tag{{Key: "env", Value: "prod"}}},
			Operation: watcher.Operation{Name: "RunInstances", State: "SUCCESS", RequestID: "req-run-" + id}}
	}
	return f
}

// set changes an instance's state, with a new operation if op is not "".
func (f *fleet) set(id string, st watcher.State, op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[id] = st
	in := f.info[id]
	in.State = st
	if op != "" {
		in.Operation = watcher.Operation{Name: op, State: "SUCCESS", RequestID: "req-" + op + "-" + id}
	}
	f.info[id] = in
}

func (f *fleet) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.states, id)
	delete(f.info, id)
}

func (f *fleet) Scan(context.Context) (watcher.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := watcher.Scan{Target: enrTarget, Complete: true, Stats: watcher.ScanStats{Started: time.Now()}}
	for _, id := range slices.Sorted(maps.Keys(f.states)) {
		s.Observations = append(s.Observations, watcher.Observation{InstanceID: id, State: f.states[id]})
	}
	return s, nil
}

func (f *fleet) Lookup(_ context.Context, ids []string) (watcher.LookupResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lr watcher.LookupResult
	for _, id := range ids {
		if st, ok := f.states[id]; ok {
			lr.Found = append(lr.Found, watcher.Observation{InstanceID: id, State: st})
		} else {
			lr.Absent = append(lr.Absent, id)
		}
	}
	return lr, nil
}

func (f *fleet) Describe(ctx context.Context, ids []string) ([]watcher.Enrichment, error) {
	f.mu.Lock()
	f.asked = append(f.asked, slices.Clone(ids))
	hook := f.describe
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, ids)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []watcher.Enrichment
	for _, id := range ids {
		if in, ok := f.info[id]; ok {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fleet) List(ctx context.Context, fn func([]watcher.Enrichment) error) error {
	f.mu.Lock()
	page := slices.Collect(maps.Values(f.info))
	f.mu.Unlock()
	return fn(page)
}

// enrichLoop is a watcher over f with the memory store and publisher.
func enrichLoop(t *testing.T, f *fleet, timeout time.Duration) (*watcher.Watcher, *store.Memory) {
	t.Helper()
	st := store.NewMemory()
	w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Interval: time.Hour, Logger: quiet,
		EnrichTimeout: timeout},
		[]watcher.TargetSource{{Target: enrTarget, Source: f, Enricher: f}})
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

func mustScan(t *testing.T, w *watcher.Watcher) watcher.Commit {
	t.Helper()
	c, err := w.ScanOnce(t.Context(), enrTarget)
	if err != nil {
		t.Fatalf("ScanOnce: %v", err)
	}
	return c
}

// outboxEvents returns the target's outbox as stored.
func outboxEvents(t *testing.T, st watcher.Store) map[string]watcher.Event {
	t.Helper()
	entries, err := st.Outbox(t.Context(), enrTarget, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]watcher.Event{}
	for _, e := range entries {
		out[e.Event.InstanceID] = e.Event
	}
	return out
}

func TestEnrichedEventsCarryTheInstanceAndOnlyANewOperation(t *testing.T) {
	f := newFleet(5)
	w, st := enrichLoop(t, f, time.Second)
	mustScan(t, w) // silent baseline
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	f.set("ins-00000001", watcher.StateStopped, "StopInstances") // an operation behind the change
	f.set("ins-00000002", watcher.StateStopped, "")              // no new operation (RunInstances is stale)
	f.remove("ins-00000003")
	f.mu.Lock()
	f.states["ins-00000009"] = watcher.StatePending
	f.info["ins-00000009"] = watcher.Enrichment{InstanceID: "ins-00000009", State: watcher.StatePending,
		Instance:  watcher.Instance{Name: "new-9"},
		Operation: watcher.Operation{Name: "RunInstances", State: "OPERATING", RequestID: "req-run-9"}}
	f.mu.Unlock()
	mustScan(t, w)
	mustScan(t, w) // the second miss makes ins-00000003 a candidate: gone

	events := outboxEvents(t, st)
	stopped := events["ins-00000001"]
	if stopped.Instance == nil || stopped.Instance.Name != "web-00000001" || len(stopped.Instance.Tags) != 1 {
		t.Fatalf("stopped event's instance = %+v, want web-00000001 with its tag", stopped.Instance)
	}
	if stopped.Operation == nil || stopped.Operation.RequestID != "req-StopInstances-ins-00000001" {
		t.Fatalf("stopped event's operation = %+v, want the StopInstances request", stopped.Operation)
	}
	if e := events["ins-00000002"]; e.Instance == nil || e.Operation != nil {
		t.Fatalf("change without a new operation: instance %+v operation %+v, want the instance and no operation", e.Instance, e.Operation)
	}
	if e := events["ins-00000009"]; e.Instance == nil || e.Instance.Name != "new-9" || e.Operation != nil {
		t.Fatalf("appearance: instance %+v operation %+v, want new-9 and no operation (a first sighting)", e.Instance, e.Operation)
	}
	if e := events["ins-00000003"]; e.To != watcher.Absent || e.Instance == nil || e.Instance.Name != "web-00000003" || e.Operation != nil {
		t.Fatalf("disappearance = %+v (instance %+v), want the last known name and no operation", e, e.Instance)
	}
	for _, ids := range f.asked {
		if slices.Contains(ids, "ins-00000003") {
			t.Fatalf("a disappeared instance was described: %v", ids)
		}
	}
	// The next change of ins-00000001 without an operation carries none:
	// StopInstances was recorded with the event.
	f.set("ins-00000001", watcher.StateRunning, "")
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].Operation != nil || c.Events[0].Instance == nil {
		t.Fatalf("second change = %+v, want one event with the instance and no (stale) operation", c.Events)
	}
}

func TestEnrichmentTimeoutNeitherDelaysNorLosesEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(3)
		const timeout = 7 * time.Second
		w, st := enrichLoop(t, f, timeout)
		mustScan(t, w)
		f.describe = func(ctx context.Context, _ []string) ([]watcher.Enrichment, error) {
			<-ctx.Done() // an API that never answers
			return nil, ctx.Err()
		}
		f.set("ins-00000000", watcher.StateStopped, "StopInstances")
		start := time.Now()
		c := mustScan(t, w)
		if took := time.Since(start); took != timeout {
			t.Fatalf("the cycle took %v, want exactly the enrichment timeout %v", took, timeout)
		}
		if len(c.Events) != 1 || c.Events[0].Instance != nil || c.Events[0].Operation != nil {
			t.Fatalf("events = %+v, want one without enrichment", c.Events)
		}
		if e, ok := outboxEvents(t, st)["ins-00000000"]; !ok || e.To != watcher.StateStopped {
			t.Fatalf("the event is not in the outbox: %+v", e)
		}
		if s := w.Status()[0]; s.EnrichError == "" || s.LastError != "" {
			t.Fatalf("status = %+v, want an enrichment problem and no cycle error", s)
		}
	})
}

func TestEnrichmentAuthErrorDegradesWithoutFailingTheCycle(t *testing.T) {
	f := newFleet(3)
	w, st := enrichLoop(t, f, time.Second)
	mustScan(t, w)
	f.describe = func(context.Context, []string) ([]watcher.Enrichment, error) {
		return nil, fmt.Errorf("DescribeInstances: UnauthorizedOperation: %w", watcher.ErrAuth)
	}
	f.set("ins-00000000", watcher.StateStopped, "StopInstances")
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].Instance != nil {
		t.Fatalf("events = %+v, want one without enrichment", c.Events)
	}
	if len(outboxEvents(t, st)) != 1 {
		t.Fatal("the event is not in the outbox")
	}
	s := w.Status()[0]
	if s.EnrichError == "" || s.LastError != "" {
		t.Fatalf("status = %+v, want an enrichment problem and no cycle error", s)
	}
	f.describe = nil
	f.set("ins-00000000", watcher.StateRunning, "StartInstances")
	if c := mustScan(t, w); len(c.Events) != 1 || c.Events[0].Instance == nil {
		t.Fatalf("events after the permission came back = %+v, want enriched", c.Events)
	}
	if s := w.Status()[0]; s.EnrichError != "" {
		t.Fatalf("EnrichError = %q after a complete enrichment, want cleared", s.EnrichError)
	}
}

func TestRefreshKeepsAnOperationTheScansHaveNotSeen(t *testing.T) {
	f := newFleet(2)
	w, st := enrichLoop(t, f, time.Second)
	mustScan(t, w)
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	// The instance stops and is renamed; a refresh runs before the scan.
	f.set("ins-00000000", watcher.StateStopped, "StopInstances")
	f.mu.Lock()
	in := f.info["ins-00000000"]
	in.Instance.Name = "renamed"
	f.info["ins-00000000"] = in
	f.mu.Unlock()
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	got, err := st.Enrichments(t.Context(), enrTarget, []string{"ins-00000000"})
	if err != nil {
		t.Fatal(err)
	}
	if e := got["ins-00000000"]; e.Instance.Name != "renamed" || e.Operation.Name != "RunInstances" {
		t.Fatalf("refreshed enrichment = %+v, want the new name and the old operation kept", e)
	}
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].Operation == nil || c.Events[0].Operation.Name != "StopInstances" {
		t.Fatalf("events = %+v, want the stop attributed to StopInstances", c.Events)
	}
}

func TestEnrichmentErrorSendsEventsPlain(t *testing.T) {
	f := newFleet(2)
	w, _ := enrichLoop(t, f, time.Second)
	mustScan(t, w)
	f.describe = func(context.Context, []string) ([]watcher.Enrichment, error) {
		return nil, errors.New("unreachable")
	}
	f.set("ins-00000001", watcher.StateStopped, "")
	if c := mustScan(t, w); len(c.Events) != 1 || c.Events[0].Instance != nil {
		t.Fatalf("events = %+v, want one, plain", c.Events)
	}
}
