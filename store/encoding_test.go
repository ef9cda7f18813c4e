package store

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

var (
	encT1 = time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	encT2 = encT1.Add(-30 * time.Second)

	sampleRecords = []watcher.Record{
		{InstanceID: "ins-r8hr2upy", State: watcher.StateRunning, Sequence: 7, Since: encT2, LastSeen: encT1},
		{InstanceID: "ins-gone", State: watcher.Absent, Sequence: math.MaxUint64, Since: time.Unix(0, -1), Missing: -3},
		{InstanceID: "x"},
	}
	sampleEvents = []watcher.Event{
		{
			ID: "6f1c", Target: watcher.Target{Account: "prod", Region: "ap-guangzhou"}, InstanceID: "ins-r8hr2upy",
			From: watcher.StateRunning, To: watcher.StateStopped, Sequence: 7, ObservedAt: encT1, PreviousObservedAt: encT2,
		},
		{ID: "appeared", InstanceID: "ins-new", From: watcher.Absent, To: watcher.StatePending, Sequence: 1, ObservedAt: encT1},
		{},
	}
	sampleMetas = []watcher.ScanMeta{
		{Baselined: true, LastScan: encT1, LastComplete: encT2, Scans: 10, CompleteScans: 9},
		{LastScan: time.Unix(0, 0), Scans: math.MaxUint64},
		{},
	}
)

func mustAppendRecord(tb testing.TB, r watcher.Record) []byte {
	tb.Helper()
	b, err := appendRecord(nil, r)
	if err != nil {
		tb.Fatalf("appendRecord(%+v) = %v", r, err)
	}
	return b
}

func mustAppendEvent(tb testing.TB, e watcher.Event) []byte {
	tb.Helper()
	b, err := appendEvent(nil, e)
	if err != nil {
		tb.Fatalf("appendEvent(%+v) = %v", e, err)
	}
	return b
}

func mustAppendScanMeta(tb testing.TB, m watcher.ScanMeta) []byte {
	tb.Helper()
	b, err := appendScanMeta(nil, m)
	if err != nil {
		tb.Fatalf("appendScanMeta(%+v) = %v", m, err)
	}
	return b
}

// The encoding is the file format: a change here needs a new encoding
// version, not an updated want.
func TestEncodingIsStable(t *testing.T) {
	// encT1 and encT2 as zig-zag varints of their Unix nanoseconds.
	const t1, t2 = "80c086fed7c6ddeb31", "8090e9bbf8c4ddeb31"
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"Record", mustAppendRecord(t, sampleRecords[0]), "01" + "03" + "07" + "52554e4e494e47" + "07" + t2 + t1 + "00"},
		{"EmptyRecord", mustAppendRecord(t, sampleRecords[2]), "01" + "00" + "00" + "00" + "00"},
		{"ScanMeta", mustAppendScanMeta(t, sampleMetas[0]), "01" + "07" + t1 + t2 + "0a" + "09"},
		{"Event", mustAppendEvent(t, sampleEvents[0]), "01" + "03" + "04" + "36663163" + "04" + "70726f64" +
			"0c" + "61702d6775616e677a686f75" + "0c" + "696e732d7238687232757079" +
			"07" + "52554e4e494e47" + "07" + "53544f50504544" + "07" + t1 + t2},
		{"EmptyEvent", mustAppendEvent(t, sampleEvents[2]), "01" + "00" + "000000000000" + "00"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s encodes as %s, want %s", tc.name, got, tc.want)
		}
	}
}

func recordsEqual(a, b watcher.Record) bool {
	return a.InstanceID == b.InstanceID && a.State == b.State && a.Sequence == b.Sequence &&
		a.Since.Equal(b.Since) && a.Since.IsZero() == b.Since.IsZero() &&
		a.LastSeen.Equal(b.LastSeen) && a.LastSeen.IsZero() == b.LastSeen.IsZero() && a.Missing == b.Missing &&
		a.Unread == b.Unread
}

func eventsEqual(a, b watcher.Event) bool {
	return a.ID == b.ID && a.Target == b.Target && a.InstanceID == b.InstanceID && a.From == b.From && a.To == b.To &&
		a.Sequence == b.Sequence && a.ObservedAt.Equal(b.ObservedAt) && a.ObservedAt.IsZero() == b.ObservedAt.IsZero() &&
		a.PreviousObservedAt.Equal(b.PreviousObservedAt) && a.PreviousObservedAt.IsZero() == b.PreviousObservedAt.IsZero()
}

func metasEqual(a, b watcher.ScanMeta) bool {
	return a.Baselined == b.Baselined && a.LastScan.Equal(b.LastScan) && a.LastScan.IsZero() == b.LastScan.IsZero() &&
		a.LastComplete.Equal(b.LastComplete) && a.LastComplete.IsZero() == b.LastComplete.IsZero() &&
		a.Scans == b.Scans && a.CompleteScans == b.CompleteScans
}

func TestEncodingRoundTrips(t *testing.T) {
	for _, r := range sampleRecords {
		got, err := decodeRecord([]byte(r.InstanceID), mustAppendRecord(t, r), newInterner())
		if err != nil || !recordsEqual(got, r) {
			t.Errorf("record %+v came back as %+v, %v", r, got, err)
		}
		if got.Since.Location() != time.UTC || got.LastSeen.Location() != time.UTC {
			t.Errorf("record times came back in %v, %v, want UTC", got.Since.Location(), got.LastSeen.Location())
		}
	}
	for i, e := range sampleEvents {
		got, err := decodeOutboxEntry(appendSeqKey(nil, uint64(i+1)), mustAppendEvent(t, e))
		if err != nil || got.Seq != uint64(i+1) || !eventsEqual(got.Event, e) {
			t.Errorf("event %+v came back as %+v, %v", e, got, err)
		}
	}
	for _, m := range sampleMetas {
		got, err := decodeScanMeta(mustAppendScanMeta(t, m))
		if err != nil || !metasEqual(got, m) {
			t.Errorf("meta %+v came back as %+v, %v", m, got, err)
		}
	}
}

func TestDecodingRefusesMalformedValues(t *testing.T) {
	rec := mustAppendRecord(t, sampleRecords[0])
	for _, tc := range []struct {
		name string
		val  []byte
	}{
		{"Empty", nil},
		{"VersionOnly", []byte{1}},
		{"UnknownVersion", append([]byte{2}, rec[1:]...)},
		{"UnknownFlag", append([]byte{1, 0x80}, rec[2:]...)},
		{"Truncated", rec[:len(rec)-1]},
		{"TrailingByte", append(bytes.Clone(rec), 0)},
		{"StringPastEnd", []byte{1, 0, 0x7f, 'R'}},
		{"HugeStringLength", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"NonMinimalVarint", []byte{1, 0, 0x80, 0x00, 0, 0}},
		{"VarintOverflow", []byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}},
	} {
		if r, err := decodeRecord([]byte("ins-1"), tc.val, nil); err == nil {
			t.Errorf("%s: decodeRecord(%x) = %+v, want an error", tc.name, tc.val, r)
		}
	}
	if _, err := decodeRecord(nil, rec, nil); err == nil {
		t.Error("decodeRecord with an empty key succeeded")
	}
	if _, err := decodeOutboxEntry([]byte{1, 2, 3}, mustAppendEvent(t, sampleEvents[0])); err == nil {
		t.Error("decodeOutboxEntry with a 3-byte key succeeded")
	}
}

func TestOutOfRangeTimesAreRefused(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if _, err := appendRecord(nil, watcher.Record{InstanceID: "i", Since: tm}); err == nil {
			t.Errorf("appendRecord with Since %v succeeded", tm)
		}
		if _, err := appendEvent(nil, watcher.Event{PreviousObservedAt: tm}); err == nil {
			t.Errorf("appendEvent with PreviousObservedAt %v succeeded", tm)
		}
		if _, err := appendScanMeta(nil, watcher.ScanMeta{LastScan: tm}); err == nil {
			t.Errorf("appendScanMeta with LastScan %v succeeded", tm)
		}
	}
}

func FuzzDecodeOutboxEntry(f *testing.F) {
	for i, e := range sampleEvents {
		f.Add(appendSeqKey(nil, uint64(i+1)), mustAppendEvent(f, e))
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte{1, 3, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x01, 0x7f})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, key, val []byte) {
		e, err := decodeOutboxEntry(key, val)
		if err != nil {
			return
		}
		// Decoding is strict, so whatever decodes encodes to the same bytes.
		again, err := appendEvent(nil, e.Event)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", e, err)
		}
		if !bytes.Equal(again, val) || !bytes.Equal(appendSeqKey(nil, e.Seq), key) {
			t.Fatalf("%x %x decodes to %+v, which encodes to %x %x", key, val, e, appendSeqKey(nil, e.Seq), again)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords {
		f.Add([]byte(r.InstanceID), mustAppendRecord(f, r))
	}
	f.Add([]byte("k"), []byte{1, 0, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, key, val []byte) {
		r, err := decodeRecord(key, val, newInterner())
		if err != nil {
			return
		}
		again, err := appendRecord(nil, r)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", r, err)
		}
		if !bytes.Equal(again, val) || r.InstanceID != string(key) {
			t.Fatalf("%x %x decodes to %+v, which encodes to %x", key, val, r, again)
		}
	})
}

func FuzzDecodeScanMeta(f *testing.F) {
	for _, m := range sampleMetas {
		f.Add(mustAppendScanMeta(f, m))
	}
	f.Fuzz(func(t *testing.T, val []byte) {
		m, err := decodeScanMeta(val)
		if err != nil {
			return
		}
		if again := mustAppendScanMeta(t, m); !bytes.Equal(again, val) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", val, m, again)
		}
	})
}

// fuzzTime turns fuzzed nanoseconds into a time: the zero time when unset,
// otherwise that instant in a zone other than UTC.
func fuzzTime(set bool, ns int64) time.Time {
	if !set {
		return time.Time{}
	}
	return time.Unix(0, ns).In(time.FixedZone("F", 3600))
}

func FuzzOutboxEntryRoundTrip(f *testing.F) {
	f.Add(uint64(1), "id", "prod", "ap-guangzhou", "ins-1", "RUNNING", "STOPPED", uint64(7), true, encT1.UnixNano(), false, int64(0))
	f.Add(uint64(math.MaxUint64), "", "", "", "", "", "\x00\xff", uint64(math.MaxUint64), true, int64(math.MinInt64), true, int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, seq uint64, id, acct, region, inst, from, to string, sequence uint64, obsSet bool, obs int64, prevSet bool, prev int64) {
		e := watcher.Event{
			ID: id, Target: watcher.Target{Account: acct, Region: region}, InstanceID: inst,
			From: watcher.State(from), To: watcher.State(to), Sequence: sequence,
			ObservedAt: fuzzTime(obsSet, obs), PreviousObservedAt: fuzzTime(prevSet, prev),
		}
		got, err := decodeOutboxEntry(appendSeqKey(nil, seq), mustAppendEvent(t, e))
		if err != nil || got.Seq != seq || !eventsEqual(got.Event, e) {
			t.Fatalf("%d %+v came back as %+v, %v", seq, e, got, err)
		}
	})
}

func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("ins-1", "RUNNING", uint64(3), true, encT1.UnixNano(), true, encT2.UnixNano(), 0)
	f.Add("\x00", "", uint64(math.MaxUint64), true, int64(math.MinInt64), false, int64(0), math.MinInt)
	f.Fuzz(func(t *testing.T, id, state string, seq uint64, sinceSet bool, since int64, seenSet bool, seen int64, missing int) {
		if id == "" {
			return // the key: never empty
		}
		r := watcher.Record{
			InstanceID: id, State: watcher.State(state), Sequence: seq,
			Since: fuzzTime(sinceSet, since), LastSeen: fuzzTime(seenSet, seen), Missing: missing,
			Unread: seq&1 == 1,
		}
		got, err := decodeRecord([]byte(id), mustAppendRecord(t, r), newInterner())
		if err != nil || !recordsEqual(got, r) {
			t.Fatalf("%+v came back as %+v, %v", r, got, err)
		}
	})
}
