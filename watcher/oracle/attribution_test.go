package oracle

import (
	"strings"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// The truth of the attribution tests: ins-aaaaaaaa stopped by request
// req-stop (ops-bot), ins-bbbbbbbb released by req-term (root).
var (
	attrTruth = []cvmsim.Change{
		{Time: sec(0), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "ABSENT", To: "RUNNING"},
		{Time: sec(0), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "ABSENT", To: "RUNNING"},
		{Time: sec(5), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "RUNNING", To: "STOPPED", Operation: "StopInstances", RequestID: "req-stop"},
		{Time: sec(6), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "RUNNING", To: "STOPPED", Operation: "StopInstances", RequestID: "req-stop-b"},
	}
	attrOps = []cvmsim.Operation{
		{RequestID: "req-stop", Action: "StopInstances", InstanceID: "ins-aaaaaaaa", Region: tg.Region, Time: sec(4), Actor: "ops-bot", SourceIP: "203.0.113.7"},
		{RequestID: "req-stop-b", Action: "StopInstances", InstanceID: "ins-bbbbbbbb", Region: tg.Region, Time: sec(5), Actor: "root", SourceIP: "203.0.113.8"},
		{RequestID: "req-old", Action: "RebootInstances", InstanceID: "ins-aaaaaaaa", Region: tg.Region, Time: sec(-99), Actor: "root", SourceIP: "203.0.113.9"},
	}
)

func stopped(id, rid string, a *watcher.Actor) watcher.Event {
	e := ev(id, 1, watcher.StateRunning, watcher.StateStopped, sec(1), sec(10))
	e.Operation = &watcher.Operation{Name: "StopInstances", State: "SUCCESS", RequestID: rid}
	e.Actor = a
	return e
}

func follow(e watcher.Event, a watcher.Actor) watcher.Event {
	return watcher.Attributed(tg, watcher.PendingAttribution{EventID: e.ID, InstanceID: e.InstanceID, Operation: *e.Operation,
		ObservedAt: e.ObservedAt}, a, sec(60))
}

func TestCheckAttributionPassesTheTruth(t *testing.T) {
	a := stopped("ins-aaaaaaaa", "req-stop", &watcher.Actor{Username: "ops-bot", SourceIP: "203.0.113.7", EventName: "StopInstances"})
	b := stopped("ins-bbbbbbbb", "req-stop-b", nil)
	r := CheckAttribution(msgs(t, a, b), msgs(t, follow(b, watcher.Actor{Username: "root", SourceIP: "203.0.113.8", EventName: "StopInstances"})),
		attrTruth, attrOps, Options{})
	if !r.OK() || r.Operations != 2 || r.Actors != 2 || r.FollowUps != 1 {
		t.Fatalf("report = %+v, want a pass judging 2 operations, 2 actors, 1 follow-up", r)
	}
}

func TestCheckAttributionCatches(t *testing.T) {
	good := watcher.Actor{Username: "ops-bot", SourceIP: "203.0.113.7", EventName: "StopInstances"}
	b := stopped("ins-bbbbbbbb", "req-stop-b", nil)
	bFollow := follow(b, watcher.Actor{Username: "root", SourceIP: "203.0.113.8", EventName: "StopInstances"})
	forged := bFollow
	forged.ID = "not-derived"
	tests := []struct {
		name          string
		state, follow []watcher.Event
		want          string
	}{
		{"a stale operation blamed", []watcher.Event{stopped("ins-aaaaaaaa", "req-old", nil)}, nil, "misattributed"},
		{"another instance's operation", []watcher.Event{stopped("ins-aaaaaaaa", "req-stop-b", nil)}, nil, "misattributed"},
		{"an unknown request", []watcher.Event{stopped("ins-aaaaaaaa", "req-none", nil)}, nil, "misattributed"},
		{"the wrong actor", []watcher.Event{stopped("ins-aaaaaaaa", "req-stop", &watcher.Actor{Username: "root", SourceIP: "203.0.113.7", EventName: "StopInstances"})}, nil, "wrong-actor"},
		{"a follow-up with the wrong actor", []watcher.Event{b}, []watcher.Event{follow(b, good)}, "wrong-actor"},
		{"a follow-up twice", []watcher.Event{b}, []watcher.Event{bFollow, bFollow}, "duplicate"},
		{"a follow-up of nothing", nil, []watcher.Event{bFollow}, "follow-up"},
		{"a follow-up with a forged id", []watcher.Event{b}, []watcher.Event{forged}, "follow-up"},
		{"a follow-up of an event that had its actor", []watcher.Event{stopped("ins-aaaaaaaa", "req-stop", &good)},
			[]watcher.Event{follow(stopped("ins-aaaaaaaa", "req-stop", &good), good)}, "follow-up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckAttribution(msgs(t, tt.state...), msgs(t, tt.follow...), attrTruth, attrOps, Options{})
			if r.OK() || !strings.HasPrefix(r.Violations[0].Kind, tt.want) {
				t.Fatalf("report = %+v, want a %s violation", r, tt.want)
			}
		})
	}
}
