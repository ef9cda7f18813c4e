package oracle

import (
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// opReboot: req-reboot rebooted ins-aaaaaaaa at 7 (root); req-stop (see
// attrOps) stopped it at 4.
var opReboot = cvmsim.Operation{RequestID: "req-reboot", Action: "RebootInstances", InstanceID: "ins-aaaaaaaa",
	Region: tg.Region, Time: sec(7), Actor: "root", SourceIP: "203.0.113.9"}

// operated is an operation event of rid (action name) on id, in
// [prev, obs].
func operated(id, name, rid string, prevAt, obs int) watcher.Event {
	return watcher.OperationEvent(tg, watcher.Enrichment{InstanceID: id, State: watcher.StateRunning,
		Operation: watcher.Operation{Name: name, State: "SUCCESS", RequestID: rid}}, sec(prevAt), sec(obs))
}

func TestCheckOperationsPassesTheTruth(t *testing.T) {
	ops := append([]cvmsim.Operation{opReboot}, attrOps...)
	r := CheckOperations(msgs(t, operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 6, 8)),
		msgs(t, stopped("ins-bbbbbbbb", "req-stop-b", nil)), ops, Options{})
	if !r.OK() || r.Events != 1 || r.Checked != 1 {
		t.Fatalf("report = %+v, want a pass judging 1 operation event against the truth", r)
	}
	// Without the recorded operations only the stream is judged.
	if r := CheckOperations(msgs(t, operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 6, 8)), nil, nil, Options{}); !r.OK() || r.Events != 1 || r.Checked != 0 {
		t.Fatalf("stream-only report = %+v, want 1 event, none checked against a truth", r)
	}
}

func TestCheckOperationsCatches(t *testing.T) {
	ops := append([]cvmsim.Operation{opReboot}, attrOps...)
	good := operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 6, 8)
	forged := good
	forged.ID = "not-derived"
	other := good
	other.Operation = &watcher.Operation{Name: "RebootInstances", State: "FAILED", RequestID: "req-reboot"}
	tests := []struct {
		name  string
		op    []watcher.Event
		state []watcher.Event
		want  string
	}{
		{"an unknown request", []watcher.Event{operated("ins-aaaaaaaa", "RebootInstances", "req-none", 6, 8)}, nil, "untrue"},
		{"another instance's request", []watcher.Event{operated("ins-bbbbbbbb", "RebootInstances", "req-reboot", 6, 8)}, nil, "untrue"},
		{"the wrong action", []watcher.Event{operated("ins-aaaaaaaa", "StopInstances", "req-reboot", 6, 8)}, nil, "untrue"},
		{"made before the window", []watcher.Event{operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 8, 9)}, nil, "untrue"},
		{"made after the window", []watcher.Event{operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 5, 6)}, nil, "untrue"},
		{"stored twice", []watcher.Event{good, good}, nil, "duplicate"},
		{"one request, two contents", []watcher.Event{good, other}, nil, "conflict"},
		{"a forged id", []watcher.Event{forged}, nil, "malformed"},
		{"a state event on the operation subject", []watcher.Event{stopped("ins-aaaaaaaa", "req-stop", nil)}, nil, "malformed"},
		{"a request also on a transition", []watcher.Event{operated("ins-aaaaaaaa", "StopInstances", "req-stop", 3, 5)},
			[]watcher.Event{stopped("ins-aaaaaaaa", "req-stop", nil)}, "reported-twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckOperations(msgs(t, tt.op...), msgs(t, tt.state...), ops, Options{})
			if r.OK() || !strings.HasPrefix(r.Violations[0].Kind, tt.want) {
				t.Fatalf("report = %+v, want a %s violation", r, tt.want)
			}
		})
	}
}

// The tolerance widens the window, as for transitions.
func TestCheckOperationsTolerance(t *testing.T) {
	late := operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 5, 6) // made at 7
	if r := CheckOperations(msgs(t, late), nil, []cvmsim.Operation{opReboot}, Options{Tolerance: 1500 * time.Millisecond}); !r.OK() {
		t.Fatalf("report = %+v, want a pass within the tolerance", r)
	}
}

// An operation event's actor is judged with the attribution, and a
// follow-up may complete it.
func TestCheckAttributionJudgesAnOperationEventsActor(t *testing.T) {
	e := operated("ins-aaaaaaaa", "RebootInstances", "req-reboot", 6, 8)
	ops := append([]cvmsim.Operation{opReboot}, attrOps...)
	r := CheckAttribution(msgs(t, e), msgs(t, follow(e, watcher.Actor{Username: "root", SourceIP: "203.0.113.9", EventName: "RebootInstances"})),
		attrTruth, ops, Options{})
	if !r.OK() || r.Operations != 0 || r.Actors != 1 || r.FollowUps != 1 {
		t.Fatalf("report = %+v, want a pass: no transition's operation, 1 actor, 1 follow-up", r)
	}
	r = CheckAttribution(msgs(t, e), msgs(t, follow(e, watcher.Actor{Username: "ops-bot", SourceIP: "203.0.113.9", EventName: "RebootInstances"})),
		attrTruth, ops, Options{})
	if r.OK() || r.Violations[0].Kind != "wrong-actor" {
		t.Fatalf("report = %+v, want a wrong-actor violation", r)
	}
}
