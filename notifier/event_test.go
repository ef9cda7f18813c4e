package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestDecodeEventReadsTheWatchersEnrichment: an event as the watcher
// publishes it, with data.instance, data.operation and its actor, decodes
// to what the routes match on (name, tags) and what a message shows (the
// operation and who made it).
func TestDecodeEventReadsTheWatchersEnrichment(t *testing.T) {
	e := ev("ins-r8hr2upy", 7, watcher.StateRunning, watcher.StateStopped, time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC))
	e.Instance = &watcher.Instance{Name: "web-01", Tags: []watcher.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: ""}}}
	e.Operation = &watcher.Operation{Name: "StopInstances", State: "SUCCESS", RequestID: "6e1c"}
	e.Actor = &watcher.Actor{Username: "ops-bot", SourceIP: "203.0.113.7", EventName: "StopInstances"}
	body, err := watcher.MarshalCloudEvent(e.Event)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := got.Label(), "web-01 (ins-r8hr2upy)"; got != want {
		t.Fatalf("Label = %q, want %q", got, want)
	}
	if v, ok := got.Tag("env"); !ok || v != "prod" {
		t.Fatalf("Tag(env) = %q, %v, want prod, true", v, ok)
	}
	if v, ok := got.Tag("team"); !ok || v != "" {
		t.Fatalf("Tag(team) = %q, %v, want \"\", true", v, ok)
	}
	if _, ok := got.Tag("owner"); ok {
		t.Fatal("Tag(owner) found on an instance without it")
	}
	m, err := Render(&Route{Name: "r", ShowTags: []string{"env"}}, StyleSlack, 3000, []Event{got}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "env=prod (StopInstances by ops-bot)"; !strings.Contains(m.Text, want) {
		t.Fatalf("text lacks %q:\n%s", want, m.Text)
	}
	if string(got.Raw) != string(body) {
		t.Fatal("Raw is not the body as read")
	}
}

// TestDecodeEventRefusesAFollowUp: a follow-up (TypeAttributed) has no
// transition; were one to reach the notifier it must not be routed as a
// state change from "" to "".
func TestDecodeEventRefusesAFollowUp(t *testing.T) {
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	f := watcher.Attributed(tgt, watcher.PendingAttribution{EventID: "0123abcd", InstanceID: "ins-r8hr2upy",
		Operation: watcher.Operation{Name: "StopInstances", RequestID: "6e1c"}}, watcher.Actor{Username: "ops-bot"}, time.Now())
	body, err := watcher.MarshalCloudEvent(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEvent(body); err == nil || !strings.Contains(err.Error(), "follow-up") {
		t.Fatalf("DecodeEvent(follow-up) = %v, want a follow-up error", err)
	}
}
