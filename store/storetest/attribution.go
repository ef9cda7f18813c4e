package storetest

import (
	"reflect"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// pendingOf is the pending attribution of e, an event with an operation.
func pendingOf(e watcher.Event) watcher.PendingAttribution {
	return watcher.PendingAttribution{EventID: e.ID, InstanceID: e.InstanceID, Operation: *e.Operation,
		ObservedAt: e.ObservedAt, Deadline: e.ObservedAt.Add(900e9)}
}

func operated(target watcher.Target, id, reqID string, seq uint64, sec int) watcher.Event {
	e := event(target, id, watcher.StateRunning, watcher.StateStopped, seq, at(sec))
	e.Operation = &watcher.Operation{Name: "StopInstances", State: "SUCCESS", RequestID: reqID}
	return e
}

// followUpEqual compares events with their operation, actor and
// Completes (times with Equal).
func followUpEqual(a, b watcher.Event) bool {
	return eventEqual(a, b) && reflect.DeepEqual(a.Operation, b.Operation) && reflect.DeepEqual(a.Actor, b.Actor) &&
		a.Completes == b.Completes && reflect.DeepEqual(a.Instance, b.Instance)
}

func mustPending(t *testing.T, s watcher.Store, target watcher.Target) []watcher.PendingAttribution {
	t.Helper()
	got, err := s.PendingAttributions(t.Context(), target)
	if err != nil {
		t.Fatalf("PendingAttributions(%s) = %v", target, err)
	}
	return got
}

func wantPending(t *testing.T, got []watcher.PendingAttribution, want ...watcher.PendingAttribution) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("pending = %+v, want %+v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.EventID != w.EventID || g.InstanceID != w.InstanceID || g.Operation != w.Operation ||
			!g.ObservedAt.Equal(w.ObservedAt) || !g.Deadline.Equal(w.Deadline) {
			t.Fatalf("pending %d = %+v, want %+v", i, g, w)
		}
	}
}

func mustResolve(t *testing.T, s watcher.Store, target watcher.Target, events []watcher.Event, done []string) int {
	t.Helper()
	n, err := s.ResolveAttributions(t.Context(), target, events, done)
	if err != nil {
		t.Fatalf("ResolveAttributions = %v", err)
	}
	return n
}

// A pending attribution is stored with its event; its follow-up is
// appended after it once, however often it is resolved; an expired one is
// removed without a follow-up; other targets see none of it.
func testAttributionsResolveOnce(t *testing.T, h Harness) {
	s := open(t, h)
	if got := mustPending(t, s, tgtA); len(got) != 0 {
		t.Fatalf("empty store has pending %+v", got)
	}
	a, b := operated(tgtA, "ins-a", "req-a", 1, 1), operated(tgtA, "ins-b", "req-b", 1, 1)
	pa, pb := pendingOf(a), pendingOf(b)
	mustCommit(t, s, tgtA, watcher.Commit{Events: []watcher.Event{a, b}, Pending: []watcher.PendingAttribution{pb, pa}})
	want := []watcher.PendingAttribution{pa, pb}
	if pb.EventID < pa.EventID {
		want = []watcher.PendingAttribution{pb, pa}
	}
	wantPending(t, mustPending(t, s, tgtA), want...)
	if got := mustPending(t, s, tgtB); len(got) != 0 {
		t.Fatalf("other target sees pending %+v", got)
	}
	follow := watcher.Attributed(tgtA, pa, watcher.Actor{Username: "ops-bot", SourceIP: "203.0.113.7", EventName: "StopInstances"}, at(20))
	if got, want := mustResolve(t, s, tgtA, []watcher.Event{follow}, nil), 1; got != want {
		t.Fatalf("appended %d follow-ups, want %d", got, want)
	}
	if got, want := mustResolve(t, s, tgtA, []watcher.Event{follow}, nil), 0; got != want {
		t.Fatalf("resolving again appended %d follow-ups, want %d", got, want)
	}
	out := mustOutbox(t, s, tgtA)
	if len(out) != 3 || out[2].Seq != 3 || !followUpEqual(out[2].Event, follow) {
		t.Fatalf("outbox = %+v, want the two events then the follow-up %+v", out, follow)
	}
	wantPending(t, mustPending(t, s, tgtA), pb)
	if got := mustResolve(t, s, tgtA, nil, []string{pb.EventID, "never-pending"}); got != 0 {
		t.Fatalf("expiring appended %d", got)
	}
	if got := mustPending(t, s, tgtA); len(got) != 0 {
		t.Fatalf("pending after expiry = %+v", got)
	}
	if got := len(mustOutbox(t, s, tgtA)); got != 3 {
		t.Fatalf("outbox has %d entries after expiry, want 3", got)
	}
	if got := mustResolve(t, s, tgtB, []watcher.Event{follow}, nil); got != 0 {
		t.Fatalf("a target with nothing pending appended %d", got)
	}
}

// Pending attributions and follow-ups (hostile values included) survive a
// restart exactly.
func testAttributionsPersist(t *testing.T, h Harness) {
	s := open(t, h)
	a := operated(tgtA, "ins-a", "req-a", 1, 1)
	b := operated(tgtA, "ins-b", "req-b\x00\xff\"", 1, 1)
	b.Actor = &watcher.Actor{Username: "x.y>*\n", SourceIP: "", EventName: "StopInstances"}
	mustCommit(t, s, tgtA, watcher.Commit{Events: []watcher.Event{a, b}, Pending: []watcher.PendingAttribution{pendingOf(a)}})
	follow := watcher.Attributed(tgtA, pendingOf(a), watcher.Actor{Username: "ops\u2028bot", SourceIP: "::1", EventName: "StopInstances"}, at(30))
	s = reopen(t, h, s)
	wantPending(t, mustPending(t, s, tgtA), pendingOf(a))
	mustResolve(t, s, tgtA, []watcher.Event{follow}, nil)
	s = reopen(t, h, s)
	out := mustOutbox(t, s, tgtA)
	if len(out) != 3 || !followUpEqual(out[1].Event, b) || !followUpEqual(out[2].Event, follow) {
		t.Fatalf("outbox after restarts = %+v, want %+v then %+v", out, b, follow)
	}
	if got := mustPending(t, s, tgtA); len(got) != 0 {
		t.Fatalf("pending after resolve and restart = %+v", got)
	}
}

// A follow-up that completes no event, and a pending attribution without
// an event id, are refused and change nothing.
func testAttributionsRefused(t *testing.T, h Harness) {
	s := open(t, h)
	a := operated(tgtA, "ins-a", "req-a", 1, 1)
	mustCommit(t, s, tgtA, watcher.Commit{Events: []watcher.Event{a}, Pending: []watcher.PendingAttribution{pendingOf(a)}})
	bad := watcher.Attributed(tgtA, pendingOf(a), watcher.Actor{Username: "u"}, at(2))
	bad.Completes = ""
	if _, err := s.ResolveAttributions(t.Context(), tgtA, []watcher.Event{bad}, []string{a.ID}); err == nil {
		t.Fatal("a follow-up without Completes was accepted")
	}
	wantPending(t, mustPending(t, s, tgtA), pendingOf(a))
	p := pendingOf(a)
	p.EventID = ""
	if _, _, err := s.Commit(t.Context(), tgtA, watcher.Commit{Pending: []watcher.PendingAttribution{p}}); err == nil {
		t.Fatal("a pending attribution without an event id was accepted")
	}
	if got := len(mustOutbox(t, s, tgtA)); got != 1 {
		t.Fatalf("outbox has %d entries, want 1", got)
	}
}
