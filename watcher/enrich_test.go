package watcher

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBoundKeepsFiftyTagsSortedAndUnique(t *testing.T) {
	var tags []Tag
	for i := 79; i >= 0; i-- {
		tags = append(tags, Tag{Key: fmt.Sprintf("k%02d", i), Value: "v"})
	}
	tags = append(tags, Tag{Key: "k05", Value: "second"}) // duplicate key: the first wins
	in := Enrichment{Instance: Instance{Tags: tags}}.Bound().Instance
	if got, want := len(in.Tags), MaxTags; got != want {
		t.Fatalf("kept %d tags, want %d", got, want)
	}
	for i, tag := range in.Tags {
		if want := fmt.Sprintf("k%02d", i); tag.Key != want || tag.Value != "v" {
			t.Fatalf("tag %d = %+v, want key %s value v", i, tag, want)
		}
	}
	if !in.Truncated {
		t.Fatal("Truncated not set after dropping tags")
	}
	if len(tags) != 81 || tags[0].Key != "k79" {
		t.Fatal("Bound changed its input")
	}
}

func TestBoundFitsTheByteLimit(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes: cut at a rune boundary
	var tags []Tag
	for i := range 50 {
		tags = append(tags, Tag{Key: fmt.Sprintf("%s%02d", strings.Repeat("k", 120), i), Value: long})
	}
	var ips []string
	for range 30 {
		ips = append(ips, "2001:0db8:85a3:0000:0000:8a2e:0370:7334")
	}
	e := Enrichment{
		Instance:  Instance{Name: long, Zone: long, PrivateIPs: ips, PublicIPs: ips, Tags: tags, CreatedTime: long},
		Operation: Operation{Name: long, State: long, RequestID: long, Error: long},
	}.Bound()
	in, op := e.Instance, e.Operation
	size := len(appendInstance(nil, &in)) + len(appendOperation(nil, &op))
	if size > MaxEnrichmentBytes {
		t.Fatalf("instance and operation take %d bytes, more than %d", size, MaxEnrichmentBytes)
	}
	if len(in.Tags) == 0 || len(in.Tags) == 50 || !in.Truncated {
		t.Fatalf("kept %d of 50 tags, truncated %v: want some dropped, some kept", len(in.Tags), in.Truncated)
	}
	for _, s := range []string{in.Name, in.Zone, op.Error, in.Tags[0].Value} {
		if !utf8.ValidString(s) || len(s) > maxValue {
			t.Fatalf("value %q not cut to %d bytes at a rune boundary", s, maxValue)
		}
	}
	if len(in.PrivateIPs) != maxIPs {
		t.Fatalf("kept %d addresses, want %d", len(in.PrivateIPs), maxIPs)
	}
}

func TestBoundFitsTheByteLimitWithEscapedValues(t *testing.T) {
	nul := strings.Repeat("\x00", 600) // 6 bytes of JSON each
	e := Enrichment{
		Instance:  Instance{Name: nul, Zone: nul, InstanceType: nul, ChargeType: nul, CreatedTime: nul, ExpiredTime: nul, RestrictState: nul, IsolatedSource: nul, Tags: []Tag{{Key: nul, Value: nul}}},
		Operation: Operation{Name: nul, State: nul, RequestID: nul, Error: nul},
	}.Bound()
	if size := len(appendOperation(appendInstance(nil, &e.Instance), &e.Operation)); size > MaxEnrichmentBytes {
		t.Fatalf("instance and operation take %d bytes, more than %d", size, MaxEnrichmentBytes)
	}
	if e.Instance.Name == "" || !e.Instance.Truncated {
		t.Fatalf("name cut to %q, truncated %v: want a prefix kept and the cut said", e.Instance.Name, e.Instance.Truncated)
	}
}

func TestBoundLeavesSmallValuesAlone(t *testing.T) {
	in := goldenInstance()
	if in.Truncated {
		t.Fatalf("golden instance truncated: %+v", in)
	}
}

func TestAttribute(t *testing.T) {
	op := func(id string) Operation { return Operation{Name: "StopInstances", State: "SUCCESS", RequestID: id} }
	now := Enrichment{Operation: op("req-new")}
	isolated := now
	isolated.Instance.IsolatedSource = IsolatedArrear
	tests := []struct {
		name    string
		now     Enrichment
		prev    Enrichment
		hadPrev bool
		to      State
		want    string // request id attributed, "" for none
	}{
		{"new request id is attributed", now, Enrichment{Operation: op("req-old")}, true, StateStopped, "req-new"},
		{"previous without an operation: new one attributed", now, Enrichment{}, true, StateStopped, "req-new"},
		{"same request id is stale", now, Enrichment{Operation: op("req-new")}, true, StateStopped, ""},
		{"first sighting carries none", now, Enrichment{}, false, StateStopped, ""},
		{"no operation at all", Enrichment{}, Enrichment{Operation: op("req-old")}, true, StateStopped, ""},
		{"shutdown for arrears carries none", isolated, Enrichment{Operation: op("req-old")}, true, StateShutdown, ""},
		{"arrears but not a shutdown", isolated, Enrichment{Operation: op("req-old")}, true, StateStopped, "req-new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if o := Attribute(tt.now, tt.prev, tt.hadPrev, tt.to); o != nil {
				got = o.RequestID
			}
			if got != tt.want {
				t.Fatalf("Attribute = %q, want %q", got, tt.want)
			}
		})
	}
}

// Reconcile reports a new operation only when the answer shows the
// snapshot's state and the operation has settled; otherwise it holds it
// (the previous operation and its time are kept), and it never stores a
// new request id silently.
func TestReconcileReportsOrHoldsEveryNewOperation(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	prev := Enrichment{InstanceID: "ins-a", State: StateRunning, FetchedAt: t0,
		Operation: Operation{Name: "StartInstances", RequestID: "req-old", State: "SUCCESS"}}
	fresh := func(state State, rid, opState string) Enrichment {
		return Enrichment{InstanceID: "ins-a", State: state, FetchedAt: t0.Add(time.Hour),
			Instance:  Instance{Name: "renamed"},
			Operation: Operation{Name: "RebootInstances", RequestID: rid, State: opState}}
	}
	tests := []struct {
		name      string
		fresh     Enrichment
		hadPrev   bool
		snapState State
		known     bool
		reported  bool // an operation event
		wantRID   string
		wantAt    time.Time // the FetchedAt kept
		entered   time.Time // when a transition entered snapState (zero: since the baseline)
	}{
		{"new, settled, same state: reported", fresh(StateRunning, "req-new", "SUCCESS"), true, StateRunning, true, true, "req-new", t0.Add(time.Hour), time.Time{}},
		{"failed operation: reported too", fresh(StateRunning, "req-new", "FAILED"), true, StateRunning, true, true, "req-new", t0.Add(time.Hour), time.Time{}},
		{"same state as the snapshot though not as the last enrichment", fresh(StateStopped, "req-new", "SUCCESS"), true, StateStopped, true, true, "req-new", t0.Add(time.Hour), time.Time{}},
		{"first sighting: stored, not reported", fresh(StateRunning, "req-new", "SUCCESS"), false, StateRunning, true, false, "req-new", t0.Add(time.Hour), time.Time{}},
		{"same request id: nothing new", fresh(StateRunning, "req-old", "SUCCESS"), true, StateRunning, true, false, "req-old", t0.Add(time.Hour), time.Time{}},
		{"state the scans have not seen: held", fresh(StateStopped, "req-new", "SUCCESS"), true, StateRunning, true, false, "req-old", t0, time.Time{}},
		{"operating: held", fresh(StateRunning, "req-new", OperationOperating), true, StateRunning, true, false, "req-old", t0, time.Time{}},
		{"no snapshot record: held", fresh(StateRunning, "req-new", "SUCCESS"), true, "", false, false, "req-old", t0, time.Time{}},
		{"null operation: previous kept", fresh(StateRunning, "", ""), true, StateRunning, true, false, "req-old", t0, time.Time{}},
		{"state entered by a transition after the previous answer: absorbed, not reported", fresh(StateStopped, "req-new", "SUCCESS"), true, StateStopped, true, false, "req-new", t0.Add(time.Hour), t0.Add(30 * time.Minute)},
		{"state entered before the previous answer: reported", fresh(StateStopped, "req-new", "SUCCESS"), true, StateStopped, true, true, "req-new", t0.Add(time.Hour), t0.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prev
			if !tt.hadPrev {
				p = Enrichment{}
			}
			keep, op := Reconcile(tt.fresh, p, tt.hadPrev, tt.snapState, tt.known, tt.entered)
			if got, want := op != nil, tt.reported; got != want {
				t.Fatalf("reported = %v (%+v), want %v", got, op, want)
			}
			if op != nil && *op != tt.fresh.Operation {
				t.Fatalf("reported %+v, want %+v", *op, tt.fresh.Operation)
			}
			if got, want := keep.Operation.RequestID, tt.wantRID; got != want {
				t.Fatalf("stored request id %q, want %q", got, want)
			}
			if got, want := keep.FetchedAt, tt.wantAt; !got.Equal(want) {
				t.Fatalf("stored FetchedAt %v, want %v", got, want)
			}
			if got, want := keep.Instance.Name, "renamed"; got != want {
				t.Fatalf("stored name %q, want the fresh %q", got, want)
			}
		})
	}
}
