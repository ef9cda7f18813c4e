package watcher

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func goldenEvents() map[string]Event {
	obs := time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	prev := time.Date(2026, 11, 26, 23, 9, 30, 123_000_000, time.UTC)
	mk := func(from, to State, seq uint64, prevAt time.Time) Event {
		return Event{
			ID: EventID(tgt, "ins-r8hr2upy", seq, from, to), Target: tgt, InstanceID: "ins-r8hr2upy",
			From: from, To: to, Sequence: seq, ObservedAt: obs, PreviousObservedAt: prevAt,
		}
	}
	web := goldenInstance()
	changed := mk(StateRunning, StateStopped, 7, prev)
	changed.Instance = &web
	changed.Operation = &Operation{Name: "StopInstances", State: "SUCCESS", RequestID: "6e1c0b9a-7f4e-4a55-9d2c-0c1f6a3e2b11"}
	appeared := mk(Absent, StatePending, 1, time.Time{})
	appeared.Instance = &web
	gone := mk(StateTerminating, Absent, 9, prev)
	gone.Instance = &web
	withActor := changed
	withActor.Actor = &Actor{Username: "ops-bot", SourceIP: "203.0.113.7", EventName: "StopInstances"}
	follow := Attributed(tgt, PendingAttribution{EventID: changed.ID, InstanceID: changed.InstanceID, Operation: *changed.Operation,
		ObservedAt: obs}, Actor{Username: "100000000011\"<x>", SourceIP: "2001:db8::7", EventName: "StopInstances"},
		obs.Add(95*time.Second))
	rebooted := OperationEvent(tgt, Enrichment{InstanceID: "ins-r8hr2upy", State: StateRunning, Instance: web,
		Operation: Operation{Name: "RebootInstances", State: "FAILED", RequestID: "9a1f0c2e-5b7d-4e3a-8c6f-1d2e3f4a5b6c",
			Error: "did not respond \"<in time>\"\n\u2028&"}}, prev, obs)
	rebootedActor := rebooted
	rebootedActor.Actor = &Actor{Username: "ops-bot", SourceIP: "203.0.113.7", EventName: "RebootInstances"}
	return map[string]Event{
		"operation":           rebooted,
		"operation_actor":     rebootedActor,
		"state_changed_actor": withActor,
		"attributed":          follow,
		"state_changed":       changed,
		"state_changed_plain": mk(StateRunning, StateStopped, 7, prev),
		"appeared":            appeared,
		"disappeared":         gone,
	}
}

// goldenInstance is data.instance of the golden events: a tag with odd
// bytes (a quote, a newline, a NUL, HTML, invalid UTF-8) is escaped, not
// dropped.
func goldenInstance() Instance {
	return Enrichment{Instance: Instance{
		Name: "web-01", Zone: "ap-guangzhou-3", InstanceType: "S5.MEDIUM4",
		PrivateIPs: []string{"10.0.0.12"}, PublicIPs: nil,
		Tags:       []Tag{{Key: "team", Value: "web"}, {Key: "env", Value: "prod"}, {Key: "note", Value: "a \"b\"\n<c>&\x00\xff"}},
		ChargeType: "POSTPAID_BY_HOUR", CreatedTime: "2026-10-01T08:00:00Z",
		RestrictState: "NORMAL", IsolatedSource: "NOTISOLATED",
	}}.Bound().Instance
}

// TestCloudEventGolden pins the wire format. Run with -update only for a
// deliberate new version of the contract.
func TestCloudEventGolden(t *testing.T) {
	for name, e := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			body, err := MarshalCloudEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			subject, err := e.Subject("cvm")
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			got := "subject: " + subject + "\n" + pretty.String() + "\n"
			path := filepath.Join("testdata", "event_"+name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./watcher -run Golden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s changed:\n--- got\n%s--- want\n%s", path, got, want)
			}
			back, err := UnmarshalCloudEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if !back.ObservedAt.Equal(e.ObservedAt) || !back.PreviousObservedAt.Equal(e.PreviousObservedAt) {
				t.Errorf("times did not round-trip: %+v", back)
			}
			back.ObservedAt, back.PreviousObservedAt = e.ObservedAt, e.PreviousObservedAt
			if e.Instance != nil {
				// JSON turns invalid UTF-8 into U+FFFD: compare with what
				// encoding/json itself keeps.
				var want InstanceData
				wb, _ := json.Marshal(instanceData(e.Instance))
				if err := json.Unmarshal(wb, &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back.Instance, want.instance()) {
					t.Errorf("instance round trip = %+v, want %+v", back.Instance, want.instance())
				}
				back.Instance = e.Instance
			}
			if !reflect.DeepEqual(back, e) {
				t.Errorf("round trip = %+v, want %+v", back, e)
			}
		})
	}
}

func TestEventSubjectRefusesUnsafeTokens(t *testing.T) {
	e := goldenEvents()["state_changed"]
	for _, bad := range []string{"ins-a.b", "ins-*", "ins->", "ins a", ""} {
		e.InstanceID = bad
		if s, err := e.Subject("cvm"); err == nil {
			t.Errorf("Subject with instance %q = %q, want an error", bad, s)
		}
	}
	e = goldenEvents()["state_changed"]
	for _, prefix := range []string{"", "cvm.", ".cvm", "c*m", "c m"} {
		if s, err := e.Subject(prefix); err == nil {
			t.Errorf("Subject with prefix %q = %q, want an error", prefix, s)
		}
	}
	if s, err := e.Subject("prod.cvm"); err != nil || !strings.HasPrefix(s, "prod.cvm.state.prod.ap-guangzhou.ins-r8hr2upy.RUNNING.STOPPED") {
		t.Errorf("Subject(prod.cvm) = %q, %v", s, err)
	}
}

func TestEventIDIsStableAndDistinct(t *testing.T) {
	a := EventID(tgt, "ins-a", 1, StateRunning, StateStopped)
	if a != EventID(tgt, "ins-a", 1, StateRunning, StateStopped) {
		t.Fatal("same transition, different ids")
	}
	others := []string{
		EventID(tgt, "ins-a", 2, StateRunning, StateStopped),
		EventID(tgt, "ins-b", 1, StateRunning, StateStopped),
		EventID(tgt, "ins-a", 1, StateStopped, StateRunning),
		EventID(Target{Account: "dev", Region: "ap-guangzhou"}, "ins-a", 1, StateRunning, StateStopped),
		EventID(Target{Account: "prodap-", Region: "guangzhou"}, "ins-a", 1, StateRunning, StateStopped),
	}
	for _, o := range others {
		if o == a {
			t.Fatal("different transitions share an id")
		}
	}
}

// marshalReference is the plain encoding/json encoding of the contract.
func marshalReference(e Event) ([]byte, error) {
	var op *OperationData
	if e.Operation != nil {
		op = &OperationData{Name: e.Operation.Name, State: e.Operation.State, RequestID: e.Operation.RequestID, Error: e.Operation.Error}
		if a := e.Actor; a != nil {
			op.Actor = &ActorData{Username: a.Username, SourceIP: a.SourceIP, EventName: a.EventName}
		}
	}
	if e.IsOperation() {
		ce := operationEnvelope{
			SpecVersion: "1.0", ID: e.ID, Source: "cvmwatch/" + e.Target.Account + "/" + e.Target.Region,
			Type: TypeOperation, Subject: e.InstanceID, Time: formatTime(e.ObservedAt), DataContentType: "application/json",
			Data: OperationEventData{Account: e.Target.Account, Region: e.Target.Region, InstanceID: e.InstanceID,
				State: e.To, ObservedAt: formatTime(e.ObservedAt), Instance: instanceData(e.Instance), Operation: op},
		}
		if !e.PreviousObservedAt.IsZero() {
			ce.Data.PreviousObservedAt = formatTime(e.PreviousObservedAt)
		}
		return json.Marshal(ce)
	}
	if e.Completes != "" {
		return json.Marshal(attributedEnvelope{
			SpecVersion: "1.0", ID: e.ID, Source: "cvmwatch/" + e.Target.Account + "/" + e.Target.Region,
			Type: TypeAttributed, Subject: e.InstanceID, Time: formatTime(e.ObservedAt), DataContentType: "application/json",
			Data: AttributedData{Account: e.Target.Account, Region: e.Target.Region, InstanceID: e.InstanceID,
				Completes: e.Completes, ObservedAt: formatTime(e.ObservedAt), Operation: op},
		})
	}
	ce := cloudEvent{
		SpecVersion: "1.0", ID: e.ID, Source: "cvmwatch/" + e.Target.Account + "/" + e.Target.Region,
		Type: e.Type(), Subject: e.InstanceID, Time: formatTime(e.ObservedAt), DataContentType: "application/json",
		Data: EventData{Account: e.Target.Account, Region: e.Target.Region, InstanceID: e.InstanceID, From: e.From, To: e.To,
			Sequence: e.Sequence, ObservedAt: formatTime(e.ObservedAt)},
	}
	if !e.PreviousObservedAt.IsZero() {
		ce.Data.PreviousObservedAt = formatTime(e.PreviousObservedAt)
	}
	ce.Data.Instance = instanceData(e.Instance)
	ce.Data.Operation = op
	return json.Marshal(ce)
}

// FuzzMarshalCloudEvent holds the hand-written encoder to encoding/json's
// bytes and checks the round trip, for any strings at all.
func FuzzMarshalCloudEvent(f *testing.F) {
	f.Add("prod", "ap-guangzhou", "ins-r8hr2upy", "RUNNING", "STOPPED", uint64(7), int64(1796000000123), int64(1796000000000), "", "", "", "", uint8(0))
	f.Add("a<b", "r\"", "ins-\u2028", "ABSENT", "x\\y", uint64(1), int64(0), int64(-5), "web-01", "env", "prod", "6e1c", uint8(3))
	f.Add("", "", "", "", "ABSENT", uint64(0), int64(1), int64(0), "\xff\xfe", "k\x00", "v\n\u2029", "", uint8(7))
	f.Add("prod", "ap-guangzhou", "ins-r8hr2upy", "", "", uint64(0), int64(1796000000123), int64(0), "ops-bot", "StopInstances", "\x00<>&\"", "6e1c", uint8(14))
	// Operation events (from == to).
	f.Add("prod", "ap-guangzhou", "ins-r8hr2upy", "RUNNING", "RUNNING", uint64(0), int64(1796000000123), int64(1796000000000), "web", "RebootInstances", "a\"<b>\n", "9a1f", uint8(7))
	f.Add("p", "r", "i", "x\u2028", "x\u2028", uint64(3), int64(1), int64(0), "\xff", "", "", "", uint8(1))
	f.Fuzz(func(t *testing.T, acct, region, id, from, to string, seq uint64, obsMs, prevMs int64, name, tagKey, tagValue, reqID string, shape uint8) {
		obs := time.UnixMilli(obsMs % 1e14).UTC()
		if got, want := string(appendTime(nil, obs)), obs.Format(TimeFormat); got != want {
			t.Fatalf("appendTime = %s, want %s", got, want)
		}
		e := Event{ID: id + "x", Target: Target{Account: acct, Region: region}, InstanceID: id,
			From: State(from), To: State(to), Sequence: seq, ObservedAt: obs}
		if prevMs > 0 {
			e.PreviousObservedAt = time.UnixMilli(prevMs % 1e14).UTC()
		}
		if shape&1 != 0 {
			in := Enrichment{Instance: Instance{Name: name, Zone: from, InstanceType: to, PrivateIPs: []string{tagValue},
				Tags:        []Tag{{Key: tagKey, Value: tagValue}, {Key: tagValue, Value: name}, {Key: name, Value: tagKey}},
				ExpiredTime: reqID, IsolatedSource: name}, Operation: Operation{Name: name, Error: tagValue}}.Bound()
			if n := len(appendOperation(appendInstance(nil, &in.Instance), &in.Operation)); n > MaxEnrichmentBytes {
				t.Fatalf("bounded enrichment takes %d bytes", n)
			}
			e.Instance = &in.Instance
		}
		if shape&2 != 0 {
			e.Operation = &Operation{Name: name, State: tagKey, RequestID: reqID, Error: tagValue}
		}
		if shape&4 != 0 && e.Operation != nil {
			a := Actor{Username: tagValue, SourceIP: name, EventName: tagKey}.Bound()
			if n := len(appendActor(nil, &a)); n > MaxActorBytes {
				t.Fatalf("bounded actor takes %d bytes", n)
			}
			e.Actor = &a
		}
		if shape&8 != 0 {
			e.Completes = reqID + "c"
		}
		got, err := MarshalCloudEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := marshalReference(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoding differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
	})
}

func BenchmarkMarshalCloudEvent(b *testing.B) {
	e := goldenEvents()["state_changed"]
	b.ReportAllocs()
	for range b.N {
		if _, err := MarshalCloudEvent(e); err != nil {
			b.Fatal(err)
		}
	}
}

// A follow-up's subject is checked token by token like a state subject:
// an unsafe account, region or instance ID is refused, never published.
func TestAttributedSubjectRefusesUnsafeTokens(t *testing.T) {
	e := goldenEvents()["attributed"]
	if s, err := e.Subject("cvm"); err != nil || s != "cvm.attribution.prod.ap-guangzhou.ins-r8hr2upy" {
		t.Fatalf("Subject = %q, %v", s, err)
	}
	for _, bad := range []string{"ins-a.b", "ins-*", "ins->", "ins a", ""} {
		e := goldenEvents()["attributed"]
		e.InstanceID = bad
		if s, err := e.Subject("cvm"); err == nil {
			t.Errorf("Subject with instance %q = %q, want an error", bad, s)
		}
		e = goldenEvents()["attributed"]
		e.Target.Region = bad
		if s, err := e.Subject("cvm"); err == nil {
			t.Errorf("Subject with region %q = %q, want an error", bad, s)
		}
	}
	if s, err := e.Subject("c*m"); err == nil {
		t.Errorf("Subject with prefix c*m = %q, want an error", s)
	}
}

// An operation event's subject is checked token by token too, its id is
// the request's on that instance, and it has no sequence.
func TestOperationEventSubjectAndID(t *testing.T) {
	e := goldenEvents()["operation"]
	if s, err := e.Subject("cvm"); err != nil || s != "cvm.operation.prod.ap-guangzhou.ins-r8hr2upy" {
		t.Fatalf("Subject = %q, %v", s, err)
	}
	if got, want := e.Type(), TypeOperation; got != want {
		t.Fatalf("Type = %s, want %s", got, want)
	}
	if e.Sequence != 0 || e.ID != OperationID(tgt, "ins-r8hr2upy", e.Operation.RequestID) {
		t.Fatalf("sequence %d id %s, want 0 and the request's id", e.Sequence, e.ID)
	}
	if OperationID(tgt, "ins-r8hr2upy", "req-a") == OperationID(tgt, "ins-r8hr2upz", "req-a") ||
		OperationID(tgt, "ins-r8hr2upy", "req-a") == OperationID(tgt, "ins-r8hr2upy", "req-b") {
		t.Fatal("two operations share an id")
	}
	for _, bad := range []string{"ins-a.b", "ins-*", "ins->", "ins a"} {
		e := goldenEvents()["operation"]
		e.InstanceID = bad
		if s, err := e.Subject("cvm"); err == nil {
			t.Errorf("Subject with instance %q = %q, want an error", bad, s)
		}
	}
}

// TestAppendCloudEventReusesABuffer encodes every golden event, in turn, into
// one buffer after a prefix, as the publisher's window slots do: each time
// the buffer must hold the prefix and then exactly MarshalCloudEvent's bytes.
func TestAppendCloudEventReusesABuffer(t *testing.T) {
	prefix := []byte("kept:")
	buf := append([]byte(nil), prefix...)
	for round := 0; round < 2; round++ {
		for name, e := range goldenEvents() {
			want, err := MarshalCloudEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			if buf, err = AppendCloudEvent(buf[:len(prefix)], e); err != nil {
				t.Fatal(err)
			}
			if got := buf[:len(prefix)]; !bytes.Equal(got, prefix) {
				t.Fatalf("%s: prefix became %q", name, got)
			}
			if got := buf[len(prefix):]; !bytes.Equal(got, want) {
				t.Fatalf("%s: appended\n%s\nwant\n%s", name, got, want)
			}
		}
	}
}
