package storetest

import (
	"reflect"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func enrichment(id, name, reqID string, sec int) watcher.Enrichment {
	return watcher.Enrichment{
		InstanceID: id, State: watcher.StateRunning, FetchedAt: at(sec),
		Instance: watcher.Instance{Name: name, Zone: "ap-guangzhou-3", InstanceType: "S5.MEDIUM4",
			PrivateIPs: []string{"10.0.0.1", "10.0.0.2"}, Tags: []watcher.Tag{{Key: "env", Value: "prod\x00\xff"}, {Key: "team", Value: ""}},
			ChargeType: "PREPAID", CreatedTime: "2026-10-01T08:00:00Z", ExpiredTime: "2027-10-01T08:00:00Z",
			RestrictState: "NORMAL", IsolatedSource: "NOTISOLATED", Truncated: name == "cut"},
		Operation: watcher.Operation{Name: "StopInstances", State: "FAILED", RequestID: reqID, Error: "no \"room\""},
	}
}

// enrichmentEqual compares two enrichments, FetchedAt with Equal.
func enrichmentEqual(a, b watcher.Enrichment) bool {
	return a.Equal(b) && a.FetchedAt.Equal(b.FetchedAt)
}

func mustEnrichments(t *testing.T, s watcher.Store, target watcher.Target, ids ...string) map[string]watcher.Enrichment {
	t.Helper()
	got, err := s.Enrichments(t.Context(), target, ids)
	if err != nil {
		t.Fatalf("Enrichments(%s) = %v", target, err)
	}
	return got
}

func wantEnrichments(t *testing.T, got map[string]watcher.Enrichment, want ...watcher.Enrichment) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d enrichments %+v, want %d", len(got), got, len(want))
	}
	for _, w := range want {
		if g, ok := got[w.InstanceID]; !ok || !enrichmentEqual(g, w) {
			t.Fatalf("enrichment of %s = %+v (found %v), want %+v", w.InstanceID, g, ok, w)
		}
	}
}

func testEnrichmentsWithCommit(t *testing.T, h Harness) {
	s := open(t, h)
	if got := mustEnrichments(t, s, tgtA, "ins-a"); len(got) != 0 {
		t.Fatalf("empty store has enrichments %+v", got)
	}
	a, b := enrichment("ins-a", "web-a", "req-1", 1), enrichment("ins-b", "cut", "", 2)
	e := event(tgtA, "ins-a", watcher.StateRunning, watcher.StateStopped, 1, at(3))
	e.Instance, e.Operation = &a.Instance, &a.Operation
	plain := event(tgtA, "ins-b", watcher.StateRunning, watcher.StateStopped, 1, at(3))
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{rec("ins-a", watcher.StateStopped, 1), rec("ins-b", watcher.StateStopped, 1)},
		Events: []watcher.Event{e, plain}, Enrich: []watcher.Enrichment{a, b}})
	wantEnrichments(t, mustEnrichments(t, s, tgtA, "ins-a", "ins-b", "ins-none", ""), a, b)
	if got := mustEnrichments(t, s, tgtB, "ins-a"); len(got) != 0 {
		t.Fatalf("other target sees enrichments %+v", got)
	}
	out := mustOutbox(t, s, tgtA)
	if len(out) != 2 || out[0].Event.Instance == nil || !out[0].Event.Instance.Equal(a.Instance) ||
		out[0].Event.Operation == nil || *out[0].Event.Operation != a.Operation {
		t.Fatalf("enriched outbox entry = %+v, want instance %+v and operation %+v", out, a.Instance, a.Operation)
	}
	if out[1].Event.Instance != nil || out[1].Event.Operation != nil {
		t.Fatalf("plain outbox entry gained enrichment: %+v", out[1].Event)
	}

	// A refresh replaces; a deleted record takes its enrichment along.
	a2 := enrichment("ins-a", "renamed", "req-2", 9)
	c := enrichment("ins-c", "no-record", "req-3", 9)
	if err := s.PutEnrichments(t.Context(), tgtA, []watcher.Enrichment{a2, c}); err != nil {
		t.Fatalf("PutEnrichments = %v", err)
	}
	wantEnrichments(t, mustEnrichments(t, s, tgtA, "ins-a", "ins-b", "ins-c"), a2, b, c)
	mustCommit(t, s, tgtA, watcher.Commit{Delete: []string{"ins-b"}})
	wantEnrichments(t, mustEnrichments(t, s, tgtA, "ins-a", "ins-b", "ins-c"), a2, c)

	s = reopen(t, h, s)
	wantEnrichments(t, mustEnrichments(t, s, tgtA, "ins-a", "ins-b", "ins-c"), a2, c)
	if out := mustOutbox(t, s, tgtA); len(out) != 2 || !reflect.DeepEqual(out[0].Event.Operation, &a.Operation) {
		t.Fatalf("outbox after reopen = %+v", out)
	}
}

func testEnrichmentsRefused(t *testing.T, h Harness) {
	s := open(t, h)
	if err := s.PutEnrichments(t.Context(), tgtA, []watcher.Enrichment{enrichment("", "x", "", 1)}); err == nil {
		t.Fatal("PutEnrichments accepted an empty instance id")
	}
	if _, _, err := s.Commit(t.Context(), tgtA, watcher.Commit{Enrich: []watcher.Enrichment{enrichment("", "x", "", 1)}}); err == nil {
		t.Fatal("Commit accepted an enrichment with an empty instance id")
	}
	if got := mustEnrichments(t, s, tgtA, ""); len(got) != 0 {
		t.Fatalf("refused enrichments were stored: %+v", got)
	}
	if err := s.PutEnrichments(t.Context(), tgtA, nil); err != nil {
		t.Fatalf("PutEnrichments(nil) = %v", err)
	}
}

func testEnrichmentsNotAliased(t *testing.T, h Harness) {
	s := open(t, h)
	a := enrichment("ins-a", "web-a", "req-1", 1)
	tags := a.Instance.Tags
	e := event(tgtA, "ins-a", watcher.StateRunning, watcher.StateStopped, 1, at(3))
	in := a.Instance
	in.Tags = append([]watcher.Tag(nil), tags...)
	e.Instance = &in
	mustCommit(t, s, tgtA, watcher.Commit{Events: []watcher.Event{e}, Enrich: []watcher.Enrichment{a}})
	tags[0].Value = "changed after commit"
	in.Tags[0].Value = "changed after commit"
	got := mustEnrichments(t, s, tgtA, "ins-a")["ins-a"]
	if got.Instance.Tags[0].Value != "prod\x00\xff" {
		t.Fatalf("store kept the caller's tag slice: %q", got.Instance.Tags[0].Value)
	}
	got.Instance.Tags[0].Value = "changed after load"
	if again := mustEnrichments(t, s, tgtA, "ins-a")["ins-a"]; again.Instance.Tags[0].Value != "prod\x00\xff" {
		t.Fatalf("store handed out its own tag slice: %q", again.Instance.Tags[0].Value)
	}
	out := mustOutbox(t, s, tgtA)
	if out[0].Event.Instance.Tags[0].Value != "prod\x00\xff" {
		t.Fatalf("outbox kept the caller's instance: %q", out[0].Event.Instance.Tags[0].Value)
	}
}
