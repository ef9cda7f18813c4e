package watcher_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestHotCommitWaitsForActorsOneIntervalAtMost: a change seen by a hot
// lookup is committed about one hot interval after it is seen, not held
// for actor_wait (30 s) waiting for a CloudAudit record: the hot set is
// there for speed. The actor, once visible, comes as the follow-up.
func TestHotCommitWaitsForActorsOneIntervalAtMost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, a, st, pub := newFleet(2), newAudit(), store.NewMemory(), mempub.New()
		const id = "ins-00000001"
		w, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Interval: time.Hour, Logger: quiet,
			EnrichTimeout: 5 * time.Second, ActorWait: 30 * time.Second, ActorHorizon: 15 * time.Minute, HotInterval: time.Second},
			[]watcher.TargetSource{{Target: enrTarget, Source: f, Enricher: f, Attributor: a, Hot: f}})
		if err != nil {
			t.Fatal(err)
		}
		baseline(t, w)
		f.set(id, watcher.StateStopping, "StopInstances")
		a.record("req-StopInstances-"+id, "ops", 0)
		mustScan(t, w) // RUNNING -> STOPPING: the instance is in the hot set

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(1500 * time.Millisecond)
		seen := time.Now()
		f.set(id, watcher.StateStopped, "ForceStop") // its record shows up in 2 minutes
		a.record("req-ForceStop-"+id, "ops", 2*time.Minute)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		var stopped *watcher.Event
		for _, e := range pub.Events() {
			if e.InstanceID == id && e.To == watcher.StateStopped {
				stopped = &e
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if stopped == nil {
			t.Fatalf("STOPPING -> STOPPED not published 5s after the change; events %+v", pub.Events())
		}
		if took := stopped.ObservedAt.Sub(seen); took > time.Second {
			t.Fatalf("observed %v after the change, want within one hot interval", took)
		}
		if stopped.Operation == nil || stopped.Operation.RequestID != "req-ForceStop-"+id || stopped.Actor != nil {
			t.Fatalf("event operation %+v actor %+v, want the new operation without its actor (not yet visible)", stopped.Operation, stopped.Actor)
		}
		mustPendingCount(t, st, 1) // the actor comes as a follow-up
	})
}
