package watcher

import (
	"fmt"
	"strings"
	"testing"
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

func TestRefreshedDoesNotRecordAnOperationAheadOfTheScans(t *testing.T) {
	prev := Enrichment{State: StateRunning, Operation: Operation{RequestID: "req-old", State: "SUCCESS"}}
	done := Enrichment{State: StateRunning, Operation: Operation{RequestID: "req-new", State: "SUCCESS"}}
	if got := Refreshed(done, prev, true).Operation.RequestID; got != "req-new" {
		t.Fatalf("settled operation, same state: recorded %q, want req-new", got)
	}
	changed := done
	changed.State = StateStopped
	if got := Refreshed(changed, prev, true).Operation.RequestID; got != "req-old" {
		t.Fatalf("state changed since the last enrichment: recorded %q, want req-old kept", got)
	}
	operating := done
	operating.Operation.State = OperationOperating
	if got := Refreshed(operating, prev, true).Operation.RequestID; got != "req-old" {
		t.Fatalf("operation in progress: recorded %q, want req-old kept", got)
	}
	if got := Refreshed(changed, Enrichment{}, false).Operation.RequestID; got != "req-new" {
		t.Fatalf("first enrichment: recorded %q, want req-new", got)
	}
}
