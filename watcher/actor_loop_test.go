package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// audit is a fake CloudAudit: each request's actor becomes visible at a
// time of its own; err, if set, answers every lookup.
type audit struct {
	mu      sync.Mutex
	records map[string]auditRecord
	err     error
	asked   int
}

type auditRecord struct {
	actor   watcher.Actor
	visible time.Time
}

func newAudit() *audit { return &audit{records: map[string]auditRecord{}} }

// record makes rid's actor visible after delay.
func (a *audit) record(rid, user string, delay time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records[rid] = auditRecord{watcher.Actor{Username: user, SourceIP: "203.0.113.9", EventName: "StopInstances"}, time.Now().Add(delay)}
}

func (a *audit) Actor(ctx context.Context, rid string, _ time.Time) (watcher.Actor, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked++
	if err := ctx.Err(); err != nil {
		return watcher.Actor{}, false, err
	}
	if a.err != nil {
		return watcher.Actor{}, false, a.err
	}
	r, ok := a.records[rid]
	if !ok || time.Now().Before(r.visible) {
		return watcher.Actor{}, false, nil
	}
	return r.actor, true, nil
}

func (a *audit) lookups() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked
}

// actorLoop is a watcher over f and a with st, enrichment baselined: the
// next change with an operation carries it.
func actorLoop(t *testing.T, f *fleet, a *audit, st watcher.Store, crash func(string)) *watcher.Watcher {
	return actorLoopWait(t, f, a, st, crash, 30*time.Second)
}

// actorLoopWait is actorLoop with an actor wait of its own.
func actorLoopWait(t *testing.T, f *fleet, a *audit, st watcher.Store, crash func(string), wait time.Duration) *watcher.Watcher {
	t.Helper()
	w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Interval: time.Hour, Logger: quiet,
		EnrichTimeout: 5 * time.Second, ActorWait: wait, ActorHorizon: 15 * time.Minute, Crash: crash},
		[]watcher.TargetSource{{Target: enrTarget, Source: f, Enricher: f, Attributor: a}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func baseline(t *testing.T, w *watcher.Watcher) {
	t.Helper()
	mustScan(t, w)
	if err := w.RefreshOnce(t.Context(), enrTarget); err != nil {
		t.Fatal(err)
	}
}

func mustAttribute(t *testing.T, w *watcher.Watcher) int {
	t.Helper()
	n, err := w.AttributeOnce(t.Context(), enrTarget)
	if err != nil {
		t.Fatalf("AttributeOnce: %v", err)
	}
	return n
}

// followUps returns the follow-ups in the target's outbox.
func followUps(t *testing.T, st watcher.Store) []watcher.Event {
	t.Helper()
	entries, err := st.Outbox(t.Context(), enrTarget, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []watcher.Event
	for _, e := range entries {
		if e.Event.Completes != "" {
			out = append(out, e.Event)
		}
	}
	return out
}

func mustPendingCount(t *testing.T, st watcher.Store, want int) {
	t.Helper()
	p, err := st.PendingAttributions(t.Context(), enrTarget)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != want {
		t.Fatalf("pending attributions = %+v, want %d", p, want)
	}
}

func TestActorFoundAtOnceIsInTheEvent(t *testing.T) {
	f, a, st := newFleet(3), newAudit(), store.NewMemory()
	w := actorLoop(t, f, a, st, nil)
	baseline(t, w)
	f.set("ins-00000001", watcher.StateStopped, "StopInstances")
	a.record("req-StopInstances-ins-00000001", "ops-bot", 0)
	c := mustScan(t, w)
	if len(c.Events) != 1 || c.Events[0].Actor == nil || c.Events[0].Actor.Username != "ops-bot" {
		t.Fatalf("events = %+v, want one whose operation names ops-bot", c.Events)
	}
	if got := outboxEvents(t, st)["ins-00000001"]; got.Actor == nil || *got.Actor != *c.Events[0].Actor {
		t.Fatalf("stored event's actor = %+v, want %+v", got.Actor, c.Events[0].Actor)
	}
	mustPendingCount(t, st, 0)
	if got := mustAttribute(t, w); got != 0 {
		t.Fatalf("follow-ups for an event that has its actor: %d", got)
	}
}

// A record that appears after ActorWait: the event goes out at ActorWait
// without its actor, and the follow-up comes once the record is visible,
// once.
func TestActorFoundLateComesAsOneFollowUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, a, st := newFleet(3), newAudit(), store.NewMemory()
		w := actorLoop(t, f, a, st, nil)
		baseline(t, w)
		f.set("ins-00000001", watcher.StateStopped, "StopInstances")
		a.record("req-StopInstances-ins-00000001", "ci-deploy", 2*time.Minute)
		start := time.Now()
		c := mustScan(t, w)
		if took := time.Since(start); took != 30*time.Second {
			t.Fatalf("the commit was held %v, want exactly actor_wait (30s)", took)
		}
		if len(c.Events) != 1 || c.Events[0].Operation == nil || c.Events[0].Actor != nil {
			t.Fatalf("events = %+v, want one with its operation and no actor", c.Events)
		}
		mustPendingCount(t, st, 1)
		if got := mustAttribute(t, w); got != 0 {
			t.Fatalf("follow-ups before the record is visible: %d", got)
		}
		time.Sleep(2 * time.Minute)
		if got := mustAttribute(t, w); got != 1 {
			t.Fatalf("follow-ups once the record is visible: %d, want 1", got)
		}
		if got := mustAttribute(t, w); got != 0 {
			t.Fatalf("a second round appended %d more", got)
		}
		fu := followUps(t, st)
		ev := c.Events[0]
		if len(fu) != 1 || fu[0].Completes != ev.ID || fu[0].ID != watcher.AttributedID(ev.ID) ||
			fu[0].Actor == nil || fu[0].Actor.Username != "ci-deploy" || *fu[0].Operation != *ev.Operation {
			t.Fatalf("follow-ups = %+v, want one completing %s with ci-deploy", fu, ev.ID)
		}
		if s, err := fu[0].Subject("cvm"); err != nil || s != "cvm.attribution.acct.ap-guangzhou.ins-00000001" {
			t.Fatalf("follow-up subject = %q, %v", s, err)
		}
		mustPendingCount(t, st, 0)
	})
}

// A crash between the lookup and the commit of the follow-up loses
// nothing and duplicates nothing: after a restart on the same bbolt file
// the follow-up is appended exactly once.
func TestFollowUpExactlyOnceAcrossACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cvmwatch.db")
	open := func() *store.Bolt {
		st, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	f, a := newFleet(3), newAudit()
	st := open()
	// Real time here (bbolt's lock): records stay invisible for a short wait.
	w := actorLoopWait(t, f, a, st, func(point string) {
		if point == watcher.CrashAfterLookup {
			panic(crashed{})
		}
	}, time.Millisecond)
	baseline(t, w)
	f.set("ins-00000001", watcher.StateStopped, "StopInstances")
	f.set("ins-00000002", watcher.StateStopped, "StopInstances")
	a.record("req-StopInstances-ins-00000001", "ops-bot", time.Hour) // not before the commit
	a.record("req-StopInstances-ins-00000002", "root", time.Hour)
	c := mustScan(t, w)
	if len(c.Events) != 2 || c.Events[0].Actor != nil {
		t.Fatalf("events = %+v, want two without actors", c.Events)
	}
	a.record("req-StopInstances-ins-00000001", "ops-bot", 0)
	a.record("req-StopInstances-ins-00000002", "root", 0)
	mustCrash(t, watcher.CrashAfterLookup, func() { w.AttributeOnce(t.Context(), enrTarget) })
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	if got := followUps(t, st); len(got) != 0 {
		t.Fatalf("follow-ups stored before their commit: %+v", got)
	}
	mustPendingCount(t, st, 2)
	w = actorLoop(t, f, a, st, nil)
	if got := mustAttribute(t, w); got != 2 {
		t.Fatalf("after the restart %d follow-ups, want 2", got)
	}
	if got := mustAttribute(t, w); got != 0 {
		t.Fatalf("a further round appended %d", got)
	}
	if got := followUps(t, st); len(got) != 2 {
		t.Fatalf("follow-ups = %+v, want exactly 2", got)
	}
}

// A record that never appears: no follow-up, no error, and the pending
// attribution is gone once the horizon passed.
func TestActorNeverFoundLeavesNoFollowUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, a, st := newFleet(3), newAudit(), store.NewMemory()
		w := actorLoop(t, f, a, st, nil)
		baseline(t, w)
		f.set("ins-00000001", watcher.StateStopped, "StopInstances")
		mustScan(t, w)
		mustPendingCount(t, st, 1)
		time.Sleep(14 * time.Minute)
		if got := mustAttribute(t, w); got != 0 {
			t.Fatalf("follow-ups = %d, want 0", got)
		}
		mustPendingCount(t, st, 1)
		time.Sleep(2 * time.Minute) // past the 15-minute horizon
		asked := a.lookups()
		if got := mustAttribute(t, w); got != 0 {
			t.Fatalf("follow-ups past the horizon = %d", got)
		}
		mustPendingCount(t, st, 0)
		if a.lookups() != asked {
			t.Fatal("an attribution past its horizon was looked up")
		}
		if got := followUps(t, st); len(got) != 0 {
			t.Fatalf("follow-ups = %+v", got)
		}
		if s := w.Status()[0]; s.ActorError != "" || s.LastError != "" {
			t.Fatalf("status = %+v, want no error: a record that never comes is not one", s)
		}
	})
}

// A lookup that is not permitted: the event goes out at once without its
// actor, the status says why, and the cycle does not fail.
func TestActorAuthErrorDegrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, a, st := newFleet(3), newAudit(), store.NewMemory()
		a.err = fmt.Errorf("LookUpEvents: AuthFailure.UnauthorizedOperation: %w", watcher.ErrAuth)
		w := actorLoop(t, f, a, st, nil)
		baseline(t, w)
		f.set("ins-00000001", watcher.StateStopped, "StopInstances")
		start := time.Now()
		c, err := w.ScanOnce(t.Context(), enrTarget)
		if err != nil {
			t.Fatalf("the cycle failed: %v", err)
		}
		if took := time.Since(start); took != 0 {
			t.Fatalf("the commit was held %v by a lookup that cannot succeed", took)
		}
		if len(c.Events) != 1 || c.Events[0].Operation == nil || c.Events[0].Actor != nil {
			t.Fatalf("events = %+v, want one with its operation and no actor", c.Events)
		}
		s := w.Status()[0]
		if s.ActorError == "" || s.LastError != "" {
			t.Fatalf("status = %+v, want an actor problem and no cycle error", s)
		}
		if _, err := w.AttributeOnce(t.Context(), enrTarget); err != nil {
			t.Fatalf("AttributeOnce with an auth error = %v, want nil (degraded, not failed)", err)
		}
		a.mu.Lock()
		a.err = nil
		a.mu.Unlock()
		a.record("req-StopInstances-ins-00000001", "root", 0)
		if got := mustAttribute(t, w); got != 1 {
			t.Fatalf("follow-ups once permitted = %d, want 1", got)
		}
		if s := w.Status()[0]; s.ActorError != "" {
			t.Fatalf("status after a working lookup = %q, want none", s.ActorError)
		}
	})
}

// Other lookup errors (throttling and server errors past the
// Attributor's retries) leave the actor to a follow-up.
func TestActorLookupErrorLeavesItToAFollowUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, a, st := newFleet(3), newAudit(), store.NewMemory()
		a.err = errors.New("LookUpEvents: after 6 attempts: RequestLimitExceeded")
		w := actorLoop(t, f, a, st, nil)
		baseline(t, w)
		f.set("ins-00000001", watcher.StateStopped, "StopInstances")
		c := mustScan(t, w)
		if len(c.Events) != 1 || c.Events[0].Actor != nil {
			t.Fatalf("events = %+v, want one without actor", c.Events)
		}
		mustPendingCount(t, st, 1)
		a.mu.Lock()
		a.err = nil
		a.mu.Unlock()
		a.record("req-StopInstances-ins-00000001", "root", 0)
		if got := mustAttribute(t, w); got != 1 {
			t.Fatalf("follow-ups = %d, want 1", got)
		}
	})
}

// crashed is what a test's crash hook panics with, standing for a process
// killed at that point.
type crashed struct{}

// mustCrash runs fn, which must end in the crash hook's panic at point; any
// other panic goes on.
func mustCrash(t *testing.T, point string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r == nil {
			t.Fatalf("no crash at %s", point)
		} else if _, ok := r.(crashed); !ok {
			panic(r)
		}
	}()
	fn()
}
