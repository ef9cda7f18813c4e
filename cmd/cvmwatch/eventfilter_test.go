package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func enrichedEvent(name string, tags ...watcher.Tag) watcher.Event {
	at := time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	return watcher.Event{ID: "x", Target: watcher.Target{Account: "prod", Region: "ap-guangzhou"}, InstanceID: "ins-r8hr2upy",
		From: "RUNNING", To: "STOPPED", Sequence: 7, ObservedAt: at, PreviousObservedAt: at.Add(-30 * time.Second),
		Instance: &watcher.Instance{Name: name, Tags: tags}}
}

func TestEnrichmentFilters(t *testing.T) {
	env := watcher.Tag{Key: "env", Value: "prod"}
	team := watcher.Tag{Key: "team", Value: "web"}
	plain := enrichedEvent("")
	plain.Instance = nil
	for _, tc := range []struct {
		name string
		args []string
		e    watcher.Event
		want bool
	}{
		{"tag matches", []string{"tag:env=prod"}, enrichedEvent("web-01", env, team), true},
		{"tag value differs", []string{"tag:env=staging"}, enrichedEvent("web-01", env), false},
		{"every tag must match", []string{"tag:env=prod", "tag:team=db"}, enrichedEvent("web-01", env, team), false},
		{"name glob", []string{"name=web-*"}, enrichedEvent("web-01"), true},
		{"name glob misses", []string{"name=db-?"}, enrichedEvent("web-01"), false},
		{"no enrichment matches no filter", []string{"name=*"}, plain, false},
		{"no filter matches all", nil, plain, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest, f, err := splitFilters(append(tc.args, "account=prod"))
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 1 || rest[0] != "account=prod" {
				t.Fatalf("subject filters = %v, want [account=prod]", rest)
			}
			if got := f.match(tc.e); got != tc.want {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range [][]string{{"tag:=x"}, {"name=["}, {"name=a", "name=b"}, {"tag:k=a", "tag:k=b"}} {
		if _, _, err := splitFilters(bad); err == nil {
			t.Errorf("splitFilters(%q) accepted a bad filter", bad)
		}
	}
}

func TestEventLineShowsNameTagsAndOperation(t *testing.T) {
	e := enrichedEvent("web-\x1b[31m01", watcher.Tag{Key: "env", Value: "prod"}, watcher.Tag{Key: "team", Value: "web\u202e"}, watcher.Tag{Key: "z", Value: "1"})
	e.Operation = &watcher.Operation{Name: "StopInstances", State: "SUCCESS", RequestID: "6e1c"}
	line := (&eventWriter{loc: time.UTC}).line(e)
	for _, part := range []string{"ins-r8hr2upy", `web-\u001b[31m01 [env=prod team=web\u202e +1]`, "by StopInstances SUCCESS (request 6e1c)"} {
		if !strings.Contains(line, part) {
			t.Errorf("line %q lacks %q", line, part)
		}
	}
	if strings.ContainsAny(line, "\x1b\u202e") {
		t.Errorf("line %q passes a terminal escape or a direction override through", line)
	}
}

func TestReadyzSaysEnrichmentProblemsButStaysReady(t *testing.T) {
	now := time.Now()
	s := watcher.TargetStatus{Target: watcher.Target{Account: "a", Region: "r"}, LastComplete: now, LastScan: now,
		EnrichError: "enrichment degraded (events go out without data.instance): UnauthorizedOperation"}
	h := judge(s, time.Minute, now)
	if !h.Ready || !strings.Contains(h.Reason, "UnauthorizedOperation") {
		t.Fatalf("judge = ready %v, reason %q; want ready with the enrichment problem said", h.Ready, h.Reason)
	}
}

func TestStateInstancesShowNames(t *testing.T) {
	st := store.NewMemory()
	tg := watcher.Target{Account: "a", Region: "r"}
	at := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	if _, _, err := st.Commit(t.Context(), tg, watcher.Commit{
		Put:    []watcher.Record{{InstanceID: "ins-aaaaaaaa", State: "RUNNING", Since: at}, {InstanceID: "ins-bbbbbbbb", State: "STOPPED", Since: at}},
		Enrich: []watcher.Enrichment{{InstanceID: "ins-aaaaaaaa", Instance: watcher.Instance{Name: "web-01", Tags: []watcher.Tag{{Key: "env", Value: "prod"}}}}},
	}); err != nil {
		t.Fatal(err)
	}
	views, err := loadInstances(t.Context(), st, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].Name != "web-01" || views[0].Tags["env"] != "prod" || views[1].Name != "" {
		t.Fatalf("views = %+v, want web-01 with its tag, then one without a name", views)
	}
	var b strings.Builder
	printState(&b, stateView{source: "test", targets: []targetHealth{{Target: "a/r", Instances: views}}}, true)
	if !strings.Contains(b.String(), "web-01") || !strings.Contains(b.String(), "NAME") {
		t.Fatalf("state --instances output lacks the name:\n%s", b.String())
	}
}

func TestEventLineShowsAnOperationWithoutAStateChange(t *testing.T) {
	at := time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	e := watcher.OperationEvent(watcher.Target{Account: "prod", Region: "ap-guangzhou"}, watcher.Enrichment{
		InstanceID: "ins-r8hr2upy", State: watcher.StateRunning, Instance: watcher.Instance{Name: "web-01"},
		Operation: watcher.Operation{Name: "RebootInstances", State: "FAILED", RequestID: "r1", Error: "no\x1b[2J answer"}},
		at.Add(-30*time.Second), at)
	e.Actor = &watcher.Actor{Username: "ops-bot"}
	line := (&eventWriter{loc: time.UTC}).line(e)
	for _, part := range []string{"ins-r8hr2upy", "RUNNING (no change)", " op ", "window 30s", "web-01",
		"by RebootInstances FAILED (request r1): no\\u001b[2J answer", "by user ops-bot"} {
		if !strings.Contains(line, part) {
			t.Errorf("line %q lacks %q", line, part)
		}
	}
	if strings.Contains(line, "->") || strings.Contains(line, "\x1b") {
		t.Errorf("line %q shows a transition or passes a terminal escape", line)
	}
}
