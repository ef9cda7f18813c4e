package store

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
)

var sampleEnrichment = watcher.Enrichment{
	InstanceID: "ins-r8hr2upy", State: watcher.StateRunning, FetchedAt: encT1,
	Instance: watcher.Instance{Name: "web-01", Zone: "ap-guangzhou-3", InstanceType: "S5.MEDIUM4",
		PrivateIPs: []string{"10.0.0.12"}, PublicIPs: []string{"203.0.113.7", "::1"},
		Tags:       []watcher.Tag{{Key: "env", Value: "prod"}, {Key: "\x00", Value: "\xff"}},
		ChargeType: "PREPAID", CreatedTime: "2026-10-01T08:00:00Z", ExpiredTime: "2027-10-01T08:00:00Z",
		RestrictState: "NORMAL", IsolatedSource: "NOTISOLATED", Truncated: true},
	Operation: watcher.Operation{Name: "StopInstances", State: "SUCCESS", RequestID: "6e1c", Error: "x"},
}

func TestEnrichedEncodingRoundTrips(t *testing.T) {
	for _, en := range []watcher.Enrichment{sampleEnrichment, {InstanceID: "x"}} {
		val, err := appendEnrichment(nil, en)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEnrichment([]byte(en.InstanceID), val)
		if err != nil {
			t.Fatalf("decode %x: %v", val, err)
		}
		if !got.Equal(en) || !got.FetchedAt.Equal(en.FetchedAt) {
			t.Fatalf("round trip = %+v, want %+v", got, en)
		}
		for _, op := range []*watcher.Operation{nil, &en.Operation} {
			e := sampleEvents[0]
			e.Instance, e.Operation = &en.Instance, op
			val := mustAppendEvent(t, e)
			back, err := decodeOutboxEntry(appendSeqKey(nil, 1), val)
			if err != nil {
				t.Fatalf("decode event %x: %v", val, err)
			}
			if !eventsEqual(back.Event, e) || !back.Event.Instance.Equal(en.Instance) || !reflect.DeepEqual(back.Event.Operation, op) {
				t.Fatalf("event round trip = %+v, want %+v", back.Event, e)
			}
		}
	}
}

func TestDecodingRefusesATruncatedFlagWithoutInstance(t *testing.T) {
	val := mustAppendEvent(t, sampleEvents[1])
	val[1] |= evTruncated
	if _, err := decodeOutboxEntry(appendSeqKey(nil, 1), val); err == nil {
		t.Fatal("decoded an event with the truncated flag and no instance")
	}
}

func FuzzDecodeEnrichment(f *testing.F) {
	val, err := appendEnrichment(nil, sampleEnrichment)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("ins-1"), val)
	e := sampleEvents[0]
	e.Instance, e.Operation = &sampleEnrichment.Instance, &sampleEnrichment.Operation
	f.Add([]byte("event"), mustAppendEvent(f, e))
	f.Fuzz(func(t *testing.T, key, val []byte) {
		if en, err := decodeEnrichment(key, val); err == nil {
			again, err := appendEnrichment(nil, en)
			if err != nil || !bytes.Equal(again, val) {
				t.Fatalf("%x decodes to %+v, which encodes to %x (%v)", val, en, again, err)
			}
		}
		if ev, err := decodeOutboxEntry(appendSeqKey(nil, 1), val); err == nil {
			again, err := appendEvent(nil, ev.Event)
			if err != nil || !bytes.Equal(again, val) {
				t.Fatalf("%x decodes to %+v, which encodes to %x (%v)", val, ev, again, err)
			}
		}
	})
}
