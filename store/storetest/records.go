package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func testEmptyTarget(t *testing.T, h Harness) {
	s := open(t, h)
	recs, meta := mustLoad(t, s, tgtA)
	if len(recs) != 0 {
		t.Fatalf("Load of an empty target gave %d records", len(recs))
	}
	wantMeta(t, meta, watcher.ScanMeta{})
	if got := mustOutbox(t, s, tgtA); len(got) != 0 {
		t.Fatalf("outbox of an empty target has %d entries", len(got))
	}
	depth, oldest := mustStats(t, s, tgtA)
	if depth != 0 || !oldest.IsZero() {
		t.Fatalf("OutboxStats of an empty target = %d, %v, want 0, zero", depth, oldest)
	}
	mustAck(t, s, tgtA, 10)
	if got := mustTargets(t, s); len(got) != 0 {
		t.Fatalf("Targets() after reads only = %v, want none", got)
	}
}

func testCommitVisible(t *testing.T, h Harness) {
	s := open(t, h)
	put := []watcher.Record{
		rec("ins-c", watcher.StateRunning, 0),
		rec("ins-a", watcher.StateStopped, 3),
		{InstanceID: "ins-b", State: watcher.StatePending, Sequence: 1, Since: at(5), LastSeen: at(6), Missing: 1},
	}
	evs := []watcher.Event{
		event(tgtA, "ins-a", watcher.StateRunning, watcher.StateStopped, 3, at(60)),
		event(tgtA, "ins-b", watcher.Absent, watcher.StatePending, 1, at(61)),
	}
	evs[1].PreviousObservedAt = time.Time{} // an appearance
	meta := watcher.ScanMeta{Baselined: true, LastScan: at(50), LastComplete: at(50), Scans: 7, CompleteScans: 6}

	first, last := mustCommit(t, s, tgtA, watcher.Commit{Put: put, Events: evs, Meta: meta})
	if first != 1 || last != 2 {
		t.Fatalf("Commit sequences = %d, %d, want 1, 2", first, last)
	}
	recs, gotMeta := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{put[1], put[2], put[0]})
	wantMeta(t, gotMeta, meta)
	wantOutbox(t, mustOutbox(t, s, tgtA), 1, evs)
}

func testLoadOrder(t *testing.T, h Harness) {
	s := open(t, h)
	rng := rand.New(rand.NewPCG(1, 2))
	var all []watcher.Record
	for i := range 600 {
		all = append(all, rec(fmt.Sprintf("ins-%08x", rng.Uint32()), watcher.StateRunning, uint64(i)))
	}
	// Three commits, each in random order.
	for i := 0; i < len(all); i += 200 {
		mustCommit(t, s, tgtA, watcher.Commit{Put: all[i : i+200]})
	}
	slices.SortFunc(all, func(a, b watcher.Record) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	all = slices.CompactFunc(all, func(a, b watcher.Record) bool { return a.InstanceID == b.InstanceID })
	recs, _ := mustLoad(t, s, tgtA)
	if len(recs) != len(all) {
		t.Fatalf("loaded %d records, want %d", len(recs), len(all))
	}
	for i := range recs {
		if recs[i].InstanceID != all[i].InstanceID {
			t.Fatalf("record %d is %s, want %s (instance ID order)", i, recs[i].InstanceID, all[i].InstanceID)
		}
	}
}

func testLoadStops(t *testing.T, h Harness) {
	s := open(t, h)
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{
		rec("ins-1", watcher.StateRunning, 0), rec("ins-2", watcher.StateRunning, 0), rec("ins-3", watcher.StateRunning, 0),
	}})
	errStop := errors.New("stop")
	calls := 0
	_, err := s.Load(t.Context(), tgtA, func(watcher.Record) error {
		if calls++; calls == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Load = %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Fatalf("callback called %d times after returning an error at 2", calls)
	}
}

func testOnlyPutChanges(t *testing.T, h Harness) {
	s := open(t, h)
	a, b, c := rec("ins-a", watcher.StateRunning, 1), rec("ins-b", watcher.StateRunning, 1), rec("ins-c", watcher.StateRunning, 1)
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{a, b, c}})
	b2 := b
	b2.State, b2.Sequence, b2.Since, b2.LastSeen = watcher.StateStopped, 2, at(90), at(90)
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{b2}})
	recs, _ := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{a, b2, c})
}

func testDelete(t *testing.T, h Harness) {
	s := open(t, h)
	a, b := rec("ins-a", watcher.StateRunning, 1), rec("ins-b", watcher.StateRunning, 1)
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{a, b}})
	mustCommit(t, s, tgtA, watcher.Commit{Delete: []string{"ins-a", "ins-never-seen"}})
	recs, _ := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{b})
	// A deleted ID can come back.
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{a}})
	recs, _ = mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{a, b})
}

func testTombstones(t *testing.T, h Harness) {
	s := open(t, h)
	gone := watcher.Record{InstanceID: "ins-gone", State: watcher.Absent, Sequence: 5, Since: at(10), LastSeen: at(10)}
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{gone, rec("ins-here", watcher.StateRunning, 2)}})
	recs, _ := mustLoad(t, s, tgtA)
	if len(recs) != 2 || !recordEqual(recs[0], gone) {
		t.Fatalf("Load = %+v, want the tombstone %+v first", recs, gone)
	}
}

func testMetaOnly(t *testing.T, h Harness) {
	s := open(t, h)
	a := rec("ins-a", watcher.StateRunning, 1)
	evs := events(tgtA, "x", 2, at(60))
	m1 := watcher.ScanMeta{Baselined: true, LastScan: at(50), LastComplete: at(50), Scans: 1, CompleteScans: 1}
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{a}, Events: evs, Meta: m1})
	m2 := watcher.ScanMeta{Baselined: true, LastScan: at(80), LastComplete: at(50), Scans: 2, CompleteScans: 1}
	first, last := mustCommit(t, s, tgtA, watcher.Commit{Meta: m2})
	if first != 0 || last != 0 {
		t.Fatalf("Commit without events returned sequences %d, %d, want 0, 0", first, last)
	}
	recs, meta := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{a})
	wantMeta(t, meta, m2)
	wantOutbox(t, mustOutbox(t, s, tgtA), 1, evs)
}

func testTimes(t *testing.T, h Harness) {
	s := open(t, h)
	local := time.Date(2031, 2, 3, 4, 5, 6, 7, time.FixedZone("X", -7*3600-1800))
	epoch := time.Unix(0, 0)
	r := watcher.Record{InstanceID: "ins-t", State: "SOME_NEW_STATE", Sequence: 1<<63 + 5, Since: local, Missing: 3}
	r2 := watcher.Record{InstanceID: "ins-u", State: watcher.StateRunning, Since: epoch, LastSeen: epoch.Add(-time.Nanosecond)}
	e := event(tgtA, "ins-t", watcher.StateRunning, "SOME_NEW_STATE", 1<<63+5, local)
	e.PreviousObservedAt = time.Time{}
	meta := watcher.ScanMeta{LastScan: local, Scans: 1<<64 - 1}
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{r, r2}, Events: []watcher.Event{e}, Meta: meta})
	recs, gotMeta := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{r, r2})
	if !recs[0].LastSeen.IsZero() {
		t.Fatalf("zero LastSeen came back as %v", recs[0].LastSeen)
	}
	wantMeta(t, gotMeta, meta)
	if !gotMeta.LastComplete.IsZero() {
		t.Fatalf("zero LastComplete came back as %v", gotMeta.LastComplete)
	}
	got := mustOutbox(t, s, tgtA)
	wantOutbox(t, got, 1, []watcher.Event{e})
	if !got[0].Event.PreviousObservedAt.IsZero() {
		t.Fatalf("zero PreviousObservedAt came back as %v", got[0].Event.PreviousObservedAt)
	}
}

func testCanceledCommit(t *testing.T, h Harness) {
	s := open(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := s.Commit(ctx, tgtA, watcher.Commit{
		Put:    []watcher.Record{rec("ins-a", watcher.StateRunning, 1)},
		Events: events(tgtA, "x", 1, at(0)),
		Meta:   watcher.ScanMeta{Scans: 1},
	})
	if err == nil {
		t.Fatal("Commit with a canceled context succeeded")
	}
	recs, meta := mustLoad(t, s, tgtA)
	if len(recs) != 0 || meta.Scans != 0 {
		t.Fatalf("canceled commit applied: records %v, meta %+v", recs, meta)
	}
	if got := mustOutbox(t, s, tgtA); len(got) != 0 {
		t.Fatalf("canceled commit appended %d events", len(got))
	}
	// It consumed no sequence.
	if first, _ := mustCommit(t, s, tgtA, watcher.Commit{Events: events(tgtA, "y", 1, at(1))}); first != 1 {
		t.Fatalf("first sequence after a canceled commit = %d, want 1", first)
	}
}
