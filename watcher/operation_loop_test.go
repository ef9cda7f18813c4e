package watcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// describedLoop is a watcher whose scans read through DescribeInstances
// (describing), enrichment on, with st and an optional crash hook.
func describedLoop(t *testing.T, src describing, st watcher.Store, crash func(string)) *watcher.Watcher {
	t.Helper()
	w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Interval: time.Hour, Logger: quiet,
		EnrichTimeout: time.Second, Crash: crash},
		[]watcher.TargetSource{{Target: enrTarget, Source: src, Enricher: src.fleet}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// reboot makes a new operation on id that leaves its state as it was.
func (f *fleet) reboot(id, rid, errMsg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.info[id]
	in.Operation = watcher.Operation{Name: "RebootInstances", State: "SUCCESS", RequestID: rid, Error: errMsg}
	f.info[id] = in
}

// operations returns the operation events in the target's outbox.
func operations(t *testing.T, st watcher.Store) []watcher.Event {
	t.Helper()
	entries, err := st.Outbox(t.Context(), enrTarget, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []watcher.Event
	for _, e := range entries {
		if e.Event.IsOperation() {
			out = append(out, e.Event)
		}
	}
	return out
}

// storedRequest returns the request id of id's stored enrichment.
func storedRequest(t *testing.T, st watcher.Store, id string) string {
	t.Helper()
	got, err := st.Enrichments(t.Context(), enrTarget, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return got[id].Operation.RequestID
}

func TestDescribedScanReportsAnOperationWithoutAStateChangeOnce(t *testing.T) {
	f, st := newFleet(3), store.NewMemory()
	w := describedLoop(t, describing{fleet: f}, st, nil)
	if c := mustScan(t, w); len(c.Events) != 0 {
		t.Fatalf("baseline events = %+v, want none (a first sighting reports no operation)", c.Events)
	}
	if got := storedRequest(t, st, "ins-00000001"); got != "req-run-ins-00000001" {
		t.Fatalf("the baseline stored request %q, want what the scan described", got)
	}
	before := time.Now()
	f.reboot("ins-00000001", "req-reboot-1", "")
	c := mustScan(t, w)
	if len(c.Events) != 1 {
		t.Fatalf("events = %+v, want one operation event", c.Events)
	}
	e := c.Events[0]
	if !e.IsOperation() || e.Type() != watcher.TypeOperation || e.To != watcher.StateRunning || e.Sequence != 0 ||
		e.Operation == nil || e.Operation.RequestID != "req-reboot-1" || e.Instance == nil || e.Instance.Name != "web-00000001" {
		t.Fatalf("event = %+v (operation %+v), want RebootInstances on a RUNNING ins-00000001", e, e.Operation)
	}
	if e.ID != watcher.OperationID(enrTarget, "ins-00000001", "req-reboot-1") {
		t.Fatalf("id %s is not the request's", e.ID)
	}
	if e.PreviousObservedAt.After(before) || e.ObservedAt.Before(before) {
		t.Fatalf("window [%v, %v] does not contain the reboot at %v", e.PreviousObservedAt, e.ObservedAt, before)
	}
	if got := operations(t, st); len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("outbox operations = %+v, want the event", got)
	}
	if got := storedRequest(t, st, "ins-00000001"); got != "req-reboot-1" {
		t.Fatalf("stored request %q after the commit, want req-reboot-1", got)
	}
	if c := mustScan(t, w); len(c.Events) != 0 {
		t.Fatalf("a re-scan reported %+v, want nothing (the operation is recorded)", c.Events)
	}
	if got := operations(t, st); len(got) != 1 {
		t.Fatalf("outbox operations after a re-scan = %d, want 1", len(got))
	}
}

// With a transition in the same commit, the operation is the
// transition's data.operation, as without Described; no operation event.
func TestDescribedOperationWithATransitionStaysOnTheTransition(t *testing.T) {
	f, st := newFleet(3), store.NewMemory()
	w := describedLoop(t, describing{fleet: f}, st, nil)
	mustScan(t, w)
	f.set("ins-00000002", watcher.StateStopped, "StopInstances")
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].IsOperation() || c.Events[0].To != watcher.StateStopped ||
		c.Events[0].Operation == nil || c.Events[0].Operation.RequestID != "req-StopInstances-ins-00000002" {
		t.Fatalf("events = %+v, want the stop carrying StopInstances", c.Events)
	}
	if got := operations(t, st); len(got) != 0 {
		t.Fatalf("operation events = %+v, want none", got)
	}
	if c := mustScan(t, w); len(c.Events) != 0 {
		t.Fatalf("a re-scan reported %+v", c.Events)
	}
}

// Hostile values reach the body escaped and never the subject; a
// described entry the snapshot does not know (here a hostile ID) reports
// nothing.
func TestDescribedOperationEscapesHostileStrings(t *testing.T) {
	f, st := newFleet(2), store.NewMemory()
	hostile := watcher.Enrichment{InstanceID: "ins-x.>*", State: watcher.StateRunning,
		Operation: watcher.Operation{Name: "Reboot\"}", RequestID: "r.>", State: "SUCCESS"}}
	src := describing{fleet: f, extra: []watcher.Enrichment{hostile}}
	w := describedLoop(t, src, st, nil)
	mustScan(t, w)
	hostile.Operation.RequestID = "r2.>"
	src.extra[0] = hostile
	const msg = "\"}],\"x\":1 <script>\n\u2028\x00"
	f.reboot("ins-00000000", "req\"<>&\n", msg)
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].InstanceID != "ins-00000000" {
		t.Fatalf("events = %+v, want one, for ins-00000000 only", c.Events)
	}
	body, err := watcher.MarshalCloudEvent(c.Events[0])
	if err != nil {
		t.Fatal(err)
	}
	var ce struct {
		Data watcher.OperationEventData `json:"data"`
	}
	if err := json.Unmarshal(body, &ce); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if ce.Data.Operation == nil || ce.Data.Operation.Error != msg || ce.Data.Operation.RequestID != "req\"<>&\n" {
		t.Fatalf("decoded operation = %+v, want the hostile values back", ce.Data.Operation)
	}
	if s, err := c.Events[0].Subject("cvm"); err != nil || s != "cvm.operation.acct.ap-guangzhou.ins-00000000" {
		t.Fatalf("subject = %q, %v", s, err)
	}
}

// A crash before the commit loses nothing (the next scan finds the
// operation again, same id); a crash after it duplicates nothing (the
// enrichment was stored with the event).
func TestDescribedOperationExactlyOnceAcrossCrashes(t *testing.T) {
	for _, point := range []string{watcher.CrashAfterScan, watcher.CrashAfterCommit} {
		t.Run(point, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cvmwatch.db")
			open := func() *store.Bolt {
				st, err := store.Open(path, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			f := newFleet(3)
			st := open()
			armed := false
			w := describedLoop(t, describing{fleet: f}, st, func(p string) {
				if armed && p == point {
					panic(crashed{})
				}
			})
			mustScan(t, w)
			f.reboot("ins-00000001", "req-reboot-1", "")
			armed = true
			mustCrash(t, point, func() { w.ScanOnce(t.Context(), enrTarget) })
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = open()
			defer st.Close()
			w = describedLoop(t, describing{fleet: f}, st, nil)
			mustScan(t, w)
			mustScan(t, w)
			got := operations(t, st)
			if len(got) != 1 || got[0].ID != watcher.OperationID(enrTarget, "ins-00000001", "req-reboot-1") {
				t.Fatalf("operation events after the crash at %s and two scans = %+v, want exactly one", point, got)
			}
		})
	}
}

// A refresh finds the operation too, commits it with its enrichment, and
// holds one still in progress until it settles, keeping the window's
// start before it.
func TestRefreshReportsASettledOperationWithoutAStateChange(t *testing.T) {
	f := newFleet(3)
	w, st := enrichLoop(t, f, time.Second)
	mustScan(t, w)
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil { // first sighting: stored, nothing reported
		t.Fatal(err)
	}
	if got := operations(t, st); len(got) != 0 {
		t.Fatalf("first refresh reported %+v", got)
	}
	before := time.Now()
	f.reboot("ins-00000002", "req-reboot-2", "")
	f.mu.Lock()
	in := f.info["ins-00000002"]
	in.Operation.State = watcher.OperationOperating
	f.info["ins-00000002"] = in
	f.mu.Unlock()
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	if got := operations(t, st); len(got) != 0 {
		t.Fatalf("an operation in progress was reported: %+v", got)
	}
	if got := storedRequest(t, st, "ins-00000002"); got != "req-run-ins-00000002" {
		t.Fatalf("stored request %q while OPERATING, want the previous one held", got)
	}
	f.mu.Lock()
	in.Operation.State = "SUCCESS"
	f.info["ins-00000002"] = in
	f.mu.Unlock()
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	got := operations(t, st)
	if len(got) != 1 || got[0].InstanceID != "ins-00000002" || got[0].Operation.RequestID != "req-reboot-2" {
		t.Fatalf("operation events = %+v, want the reboot of ins-00000002", got)
	}
	if got[0].PreviousObservedAt.After(before) || got[0].ObservedAt.Before(before) {
		t.Fatalf("window [%v, %v] does not contain the reboot at %v", got[0].PreviousObservedAt, got[0].ObservedAt, before)
	}
	if got := storedRequest(t, st, "ins-00000002"); got != "req-reboot-2" {
		t.Fatalf("stored request %q, want req-reboot-2 stored with its event", got)
	}
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	if c := mustScan(t, w); len(c.Events) != 0 {
		t.Fatalf("scan after the refresh reported %+v", c.Events)
	}
	if got := operations(t, st); len(got) != 1 {
		t.Fatalf("operation events after another refresh and a scan = %d, want 1", len(got))
	}
}

// A refresh's operation event is attributed like a transition's: its
// actor comes as a follow-up naming it (a refresh never waits).
func TestRefreshOperationIsAttributedByAFollowUp(t *testing.T) {
	f, a, st := newFleet(3), newAudit(), store.NewMemory()
	w := actorLoop(t, f, a, st, nil)
	baseline(t, w)
	f.reboot("ins-00000000", "req-reboot-0", "")
	a.record("req-reboot-0", "ops-bot", 0)
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	ops := operations(t, st)
	if len(ops) != 1 || ops[0].Actor != nil {
		t.Fatalf("operation events = %+v, want one without its actor yet", ops)
	}
	mustPendingCount(t, st, 1)
	if got := mustAttribute(t, w); got != 1 {
		t.Fatalf("follow-ups = %d, want 1", got)
	}
	fu := followUps(t, st)
	if len(fu) != 1 || fu[0].Completes != ops[0].ID || fu[0].Actor == nil || fu[0].Actor.Username != "ops-bot" {
		t.Fatalf("follow-ups = %+v, want one completing %s with ops-bot", fu, ops[0].ID)
	}
}

// A scan's operation event gets its actor before the commit when
// CloudAudit has it, like a transition.
func TestDescribedOperationCarriesItsActor(t *testing.T) {
	f, a, st := newFleet(3), newAudit(), store.NewMemory()
	src := describing{fleet: f}
	w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Interval: time.Hour, Logger: quiet,
		EnrichTimeout: time.Second, ActorWait: 5 * time.Second},
		[]watcher.TargetSource{{Target: enrTarget, Source: src, Enricher: f, Attributor: a}})
	if err != nil {
		t.Fatal(err)
	}
	mustScan(t, w)
	f.reboot("ins-00000001", "req-reboot-1", "")
	a.record("req-reboot-1", "ci-deploy", 0)
	c := mustScan(t, w)
	if len(c.Events) != 1 || !c.Events[0].IsOperation() || c.Events[0].Actor == nil || c.Events[0].Actor.Username != "ci-deploy" {
		t.Fatalf("events = %+v, want the operation event with ci-deploy", c.Events)
	}
	mustPendingCount(t, st, 0)
	if !slices.ContainsFunc(operations(t, st), func(e watcher.Event) bool { return e.Actor != nil }) {
		t.Fatal("the stored operation event lost its actor")
	}
}

// TestRefreshAfterAnUnenrichedTransitionReportsNoOperation: a transition
// committed without its enrichment (DescribeInstances failed) leaves the
// old request id stored; the refresh that then sees the new request id
// with the snapshot's (new) state must not call it an operation that left
// no visible change: the stream already holds that change. (Found by
// review: the refresh published StopInstances "no change" after the
// RUNNING -> STOPPED it made.)
func TestRefreshAfterAnUnenrichedTransitionReportsNoOperation(t *testing.T) {
	f := newFleet(2)
	w, st := enrichLoop(t, f, time.Second)
	mustScan(t, w) // baseline
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.describe = func(context.Context, []string) ([]watcher.Enrichment, error) {
		return nil, errors.New("throttled")
	}
	f.mu.Unlock()
	f.set("ins-00000001", watcher.StateStopped, "StopInstances")
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].To != watcher.StateStopped || c.Events[0].Operation != nil {
		t.Fatalf("events = %+v, want the stop without data.operation (its enrichment failed)", c.Events)
	}
	f.mu.Lock()
	f.describe = nil
	f.mu.Unlock()
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
	if got := operations(t, st); len(got) != 0 {
		t.Fatalf("operation events = %+v, want none: the StopInstances made the RUNNING -> STOPPED already published", got)
	}
	if got, want := storedRequest(t, st, "ins-00000001"), "req-StopInstances-ins-00000001"; got != want {
		t.Fatalf("stored request id %q, want %q (absorbed: a later operation is compared with it)", got, want)
	}
}
