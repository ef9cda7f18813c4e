package cvm_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// mustNewAttributor returns an Attributor of testRegion on srv, through
// the SDK's common client, with fast retries.
func mustNewAttributor(tb testing.TB, srv *cvmsim.Server, attempts int) *cvm.Attributor {
	tb.Helper()
	a, err := cvm.NewAttributor(cvm.AttributorConfig{Target: enrTarget, Endpoint: srv.URL(),
		Credential: common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey),
		Limiter:    cvm.NewLimiter(10000, 1), RequestTimeout: time.Second,
		Retry:  cvm.RetryPolicy{MaxAttempts: attempts, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func running(tb testing.TB, srv *cvmsim.Server) []string {
	tb.Helper()
	var out []string
	for _, in := range srv.Instances(testRegion) {
		if in.InstanceState == "RUNNING" {
			out = append(out, in.InstanceId)
		}
	}
	if len(out) < 2 {
		tb.Fatalf("fleet has %d RUNNING instances, want 2", len(out))
	}
	return out
}

func TestAttributorFindsTheActorOfARequest(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 4, Seed: 3, AuditRateLimit: -1})
	a := mustNewAttributor(t, srv, 2)
	ids := running(t, srv)
	rid, err := srv.Operate(ids[0], cvmsim.ActionStopInstances, "ops-bot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Operate(ids[1], cvmsim.ActionRebootInstances, "someone-else"); err != nil {
		t.Fatal(err)
	}
	got, found, err := a.Actor(t.Context(), rid, time.Now())
	if err != nil || !found {
		t.Fatalf("Actor = %+v, %v, %v; want found", got, found, err)
	}
	var op cvmsim.Operation
	for _, o := range srv.Operations() {
		if o.RequestID == rid {
			op = o
		}
	}
	if want := (watcher.Actor{Username: "ops-bot", SourceIP: op.SourceIP, EventName: "StopInstances"}); got != want || op.SourceIP == "" {
		t.Fatalf("actor = %+v, want %+v (the simulator's record)", got, want)
	}
	if _, found, err := a.Actor(t.Context(), "no-such-request", time.Now()); found || err != nil {
		t.Fatalf("unknown request: found %v, err %v; want not found, no error", found, err)
	}
	// Outside the time range asked: an operation seen a day later is not
	// matched to this one.
	if _, found, err := a.Actor(t.Context(), rid, time.Now().Add(24*time.Hour)); found || err != nil {
		t.Fatalf("record outside the range: found %v, err %v", found, err)
	}
}

func TestAttributorAuditDelayAndUnaudited(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 4, Seed: 3, AuditRateLimit: -1, AuditDelay: 300 * time.Millisecond})
	a := mustNewAttributor(t, srv, 2)
	ids := running(t, srv)
	rid, err := srv.Operate(ids[0], cvmsim.ActionStopInstances, "late-user")
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := a.Actor(t.Context(), rid, time.Now()); found || err != nil {
		t.Fatalf("before the audit delay: found %v, err %v; want not yet", found, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, found, err := a.Actor(t.Context(), rid, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if found {
			if got.Username != "late-user" {
				t.Fatalf("actor = %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record never became visible")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := srv.Update(ids[1], cvmsim.Update{State: "STOPPED", Operation: "StopInstances", Actor: "ghost", Unaudited: true}); err != nil {
		t.Fatal(err)
	}
	var ghost string
	for _, in := range srv.Instances(testRegion) {
		if in.InstanceId == ids[1] {
			ghost = in.LatestOperationRequestId
		}
	}
	time.Sleep(400 * time.Millisecond)
	if _, found, err := a.Actor(t.Context(), ghost, time.Now()); found || err != nil {
		t.Fatalf("unaudited operation: found %v, err %v; want never found", found, err)
	}
}

func TestAttributorFaults(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 3, Seed: 5, AuditRateLimit: -1})
	ids := running(t, srv)
	rid, err := srv.Operate(ids[0], cvmsim.ActionStopInstances, "alice")
	if err != nil {
		t.Fatal(err)
	}
	only := func(f cvmsim.Fault) func() {
		f.Action = cvmsim.ActionLookUpEvents
		id := srv.AddFault(f)
		return func() { srv.RemoveFault(id) }
	}
	t.Run("throttling and 5xx are retried", func(t *testing.T) {
		for _, f := range []cvmsim.Fault{
			{Kind: cvmsim.FaultError, Code: cvmsim.CodeRequestLimitExceeded, Count: 2},
			{Kind: cvmsim.FaultHTML502, Count: 2},
			{Kind: cvmsim.FaultTimeout, Count: 1},
		} {
			undo := only(f)
			got, found, err := mustNewAttributor(t, srv, 4).Actor(t.Context(), rid, time.Now())
			undo()
			if err != nil || !found || got.Username != "alice" {
				t.Fatalf("%s: actor %+v, found %v, err %v; want alice after retries", f.Kind, got, found, err)
			}
		}
	})
	t.Run("a throttling storm is an error, not a panic or a guess", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultError, Code: cvmsim.CodeRequestLimitExceeded})()
		_, found, err := mustNewAttributor(t, srv, 2).Actor(t.Context(), rid, time.Now())
		if found || !errors.Is(err, cvm.ErrThrottled) {
			t.Fatalf("found %v, err %v; want ErrThrottled", found, err)
		}
	})
	t.Run("missing permission is ErrAuth, not retried", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultError, Code: cvmsim.CodeAuthUnauthorizedOperation})()
		before := srv.Stats().Requests[cvmsim.ActionLookUpEvents]
		_, found, err := mustNewAttributor(t, srv, 4).Actor(t.Context(), rid, time.Now())
		if found || !errors.Is(err, watcher.ErrAuth) {
			t.Fatalf("found %v, err %v; want ErrAuth", found, err)
		}
		if got := srv.Stats().Requests[cvmsim.ActionLookUpEvents] - before; got != 1 {
			t.Fatalf("%d requests, want 1 (auth errors are not retried)", got)
		}
	})
	t.Run("null fields: no actor yet", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultNullFields})()
		if got, found, err := mustNewAttributor(t, srv, 2).Actor(t.Context(), rid, time.Now()); found || err != nil {
			t.Fatalf("actor %+v, found %v, err %v; want not found", got, found, err)
		}
	})
	t.Run("hostile values are bounded data", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultHostileValues})()
		got, found, err := mustNewAttributor(t, srv, 2).Actor(t.Context(), rid, time.Now())
		if err != nil || !found {
			t.Fatalf("found %v, err %v", found, err)
		}
		// Kept as data, never tokens: the watcher JSON-escapes them.
		if got.Username != "a.b>*" || got.SourceIP != "line\nbreak\ttab\r" {
			t.Fatalf("actor = %+v, want the hostile values as they came", got)
		}
	})
}

// Through the whole loop: an operation's event carries its actor when the
// record is visible at once, and a follow-up names it when it comes later.
func TestActorThroughTheLoop(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 4, Seed: 9, AuditRateLimit: -1, AuditDelay: 2 * time.Second})
	s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 2})
	st := store.NewMemory()
	tg := watcher.Target{Account: "test", Region: testRegion}
	w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Interval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EnrichTimeout: 5 * time.Second,
		ActorWait: 100 * time.Millisecond, ActorHorizon: time.Minute},
		[]watcher.TargetSource{{Target: tg, Source: s, Enricher: mustNewEnricher(t, srv, nil), Attributor: mustNewAttributor(t, srv, 2)}})
	if err != nil {
		t.Fatal(err)
	}
	scanOnce(t, w)
	if err := w.RefreshOnce(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	ids := running(t, srv)
	rid, err := srv.Operate(ids[0], cvmsim.ActionStopInstances, "ops-bot")
	if err != nil {
		t.Fatal(err)
	}
	e := eventOf(t, scanOnce(t, w), ids[0])
	if e.Operation == nil || e.Operation.RequestID != rid || e.Actor != nil {
		t.Fatalf("event operation %+v actor %+v, want request %s and no actor yet (audit delay 2s > actor_wait)", e.Operation, e.Actor, rid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := w.AttributeOnce(t.Context(), tg)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if n != 0 || time.Now().After(deadline) {
			t.Fatalf("AttributeOnce = %d by the deadline", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, err := st.Outbox(t.Context(), tg, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	last := entries[len(entries)-1].Event
	if last.Completes != e.ID || last.Actor == nil || last.Actor.Username != "ops-bot" || last.Actor.EventName != "StopInstances" {
		t.Fatalf("last outbox entry = %+v (actor %+v), want the follow-up of %s by ops-bot", last, last.Actor, e.ID)
	}
}
