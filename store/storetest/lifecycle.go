package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func testIsolation(t *testing.T, h Harness) {
	s := open(t, h)
	ra, rb := rec("ins-same", watcher.StateRunning, 1), rec("ins-same", watcher.StateStopped, 4)
	ea, eb := events(tgtA, "a", 2, at(0)), events(tgtB, "b", 3, at(10))
	ma, mb := watcher.ScanMeta{Scans: 1}, watcher.ScanMeta{Scans: 2, Baselined: true}
	if first, _ := mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{ra}, Events: ea, Meta: ma}); first != 1 {
		t.Fatalf("first sequence of %s = %d, want 1", tgtA, first)
	}
	if first, _ := mustCommit(t, s, tgtB, watcher.Commit{Put: []watcher.Record{rb}, Events: eb, Meta: mb}); first != 1 {
		t.Fatalf("first sequence of %s = %d, want 1 (sequences are per target)", tgtB, first)
	}
	mustAck(t, s, tgtA, 2)
	mustCommit(t, s, tgtB, watcher.Commit{Delete: []string{"ins-same"}, Meta: mb})

	recs, meta := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{ra})
	wantMeta(t, meta, ma)
	if got := mustOutbox(t, s, tgtA); len(got) != 0 {
		t.Fatalf("outbox of %s has %d entries after acknowledging all", tgtA, len(got))
	}
	recs, meta = mustLoad(t, s, tgtB)
	wantRecords(t, recs, nil)
	wantMeta(t, meta, mb)
	wantOutbox(t, mustOutbox(t, s, tgtB), 1, eb)
	if depth, _ := mustStats(t, s, tgtB); depth != 3 {
		t.Fatalf("outbox depth of %s = %d, want 3", tgtB, depth)
	}
}

func testTargetsSorted(t *testing.T, h Harness) {
	s := open(t, h)
	want := []watcher.Target{
		{Account: "a", Region: "b"},
		{Account: "a", Region: "z"},
		{Account: "ab", Region: "a"},
		{Account: "b", Region: "a-1"},
		{Account: "b", Region: "a_1"},
	}
	for _, i := range []int{3, 1, 4, 0, 2} {
		// A target is listed once committed, whatever the commit holds.
		var c watcher.Commit
		switch i % 3 {
		case 0:
			c.Put = []watcher.Record{rec("ins-1", watcher.StateRunning, 0)}
		case 1:
			c.Events = events(want[i], "e", 1, at(0))
		}
		mustCommit(t, s, want[i], c)
	}
	if got := mustTargets(t, s); !slices.Equal(got, want) {
		t.Fatalf("Targets() = %v, want %v", got, want)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	s := open(t, h)
	const targets, commits, perCommit = 6, 8, 3
	var wg sync.WaitGroup
	for i := range targets {
		tgt := watcher.Target{Account: "acct", Region: fmt.Sprintf("region-%d", i)}
		wg.Go(func() {
			for j := range commits {
				c := watcher.Commit{
					Put:    []watcher.Record{rec(fmt.Sprintf("ins-%d", j), watcher.StateRunning, uint64(j))},
					Events: events(tgt, fmt.Sprint(j), perCommit, at(j)),
					Meta:   watcher.ScanMeta{Scans: uint64(j + 1)},
				}
				first, last, err := s.Commit(t.Context(), tgt, c)
				if want := uint64(j*perCommit + 1); err != nil || first != want || last != want+perCommit-1 {
					t.Errorf("Commit %d to %s = %d, %d, %v; want %d, %d", j, tgt, first, last, err, want, want+perCommit-1)
					return
				}
				if _, err := s.Outbox(t.Context(), tgt, 0, 100); err != nil {
					t.Errorf("Outbox(%s) = %v", tgt, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := mustTargets(t, s); len(got) != targets {
		t.Fatalf("Targets() lists %d targets, want %d", len(got), targets)
	}
	for i := range targets {
		tgt := watcher.Target{Account: "acct", Region: fmt.Sprintf("region-%d", i)}
		recs, meta := mustLoad(t, s, tgt)
		if len(recs) != commits || meta.Scans != commits {
			t.Fatalf("%s has %d records and %d scans, want %d and %d", tgt, len(recs), meta.Scans, commits, commits)
		}
		var want []watcher.Event
		for j := range commits {
			want = append(want, events(tgt, fmt.Sprint(j), perCommit, at(j))...)
		}
		wantOutbox(t, mustOutbox(t, s, tgt), 1, want)
	}
}

func testReopen(t *testing.T, h Harness) {
	s := open(t, h)
	if h.Reopen == nil {
		t.Skip("store does not persist: no Reopen")
	}
	a, b := rec("ins-a", watcher.StateRunning, 2), watcher.Record{InstanceID: "ins-b", State: watcher.Absent, Sequence: 9, LastSeen: at(7)}
	evs := events(tgtA, "r", 4, at(0))
	meta := watcher.ScanMeta{Baselined: true, LastScan: at(40), LastComplete: at(30), Scans: 9, CompleteScans: 8}
	mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{a, b}, Events: evs, Meta: meta})
	mustCommit(t, s, tgtB, watcher.Commit{Meta: watcher.ScanMeta{Scans: 1}})
	mustAck(t, s, tgtA, 1)

	s = reopen(t, h, s)
	recs, gotMeta := mustLoad(t, s, tgtA)
	wantRecords(t, recs, []watcher.Record{a, b})
	wantMeta(t, gotMeta, meta)
	wantOutbox(t, mustOutbox(t, s, tgtA), 2, evs[1:])
	if depth, oldest := mustStats(t, s, tgtA); depth != 3 || !oldest.Equal(at(1)) {
		t.Fatalf("OutboxStats after reopen = %d, %v, want 3, %v", depth, oldest, at(1))
	}
	if got, want := mustTargets(t, s), []watcher.Target{tgtA, tgtB}; !slices.Equal(got, want) {
		t.Fatalf("Targets() after reopen = %v, want %v", got, want)
	}
	if first, _ := mustCommit(t, s, tgtA, watcher.Commit{Events: events(tgtA, "s", 1, at(9))}); first != 5 {
		t.Fatalf("first sequence after reopen = %d, want 5", first)
	}
}

func testClosed(t *testing.T, h Harness) {
	s := h.Open(t)
	mustCommit(t, s, tgtA, watcher.Commit{Events: events(tgtA, "c", 1, at(0))})
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	ctx := t.Context()
	calls := map[string]error{}
	_, calls["Load"] = s.Load(ctx, tgtA, func(watcher.Record) error { return nil })
	_, _, calls["Commit"] = s.Commit(ctx, tgtA, watcher.Commit{})
	_, calls["Outbox"] = s.Outbox(ctx, tgtA, 0, 10)
	calls["Acknowledge"] = s.Acknowledge(ctx, tgtA, 1)
	_, _, calls["OutboxStats"] = s.OutboxStats(ctx, tgtA)
	_, calls["Targets"] = s.Targets(ctx)
	for name, err := range calls {
		if !errors.Is(err, watcher.ErrStoreClosed) {
			t.Errorf("%s after Close = %v, want ErrStoreClosed", name, err)
		}
	}
	if err := s.Close(); err != nil && !errors.Is(err, watcher.ErrStoreClosed) {
		t.Fatalf("second Close() = %v, want nil or ErrStoreClosed", err)
	}
}

func testNoAliasing(t *testing.T, h Harness) {
	s := open(t, h)
	put := []watcher.Record{rec("ins-a", watcher.StateRunning, 1), rec("ins-b", watcher.StateRunning, 1)}
	del := []string{"ins-x"}
	evs := events(tgtA, "n", 2, at(0))
	wantPut, wantEvs := slices.Clone(put), slices.Clone(evs)
	mustCommit(t, s, tgtA, watcher.Commit{Put: put, Delete: del, Events: evs})

	// Changing what was committed changes nothing stored.
	put[0].State, put[1].InstanceID = watcher.StateStopped, "ins-z"
	del[0] = "ins-a"
	evs[0].ID, evs[1].Sequence, evs[1].ObservedAt = "changed", 99, time.Time{}
	recs, _ := mustLoad(t, s, tgtA)
	wantRecords(t, recs, wantPut)
	got, err := s.Outbox(t.Context(), tgtA, 0, 10)
	if err != nil {
		t.Fatalf("Outbox = %v", err)
	}
	wantOutbox(t, got, 1, wantEvs)

	// Changing what was returned changes nothing stored.
	got[0].Seq, got[0].Event.ID, got[1].Event.Target = 42, "changed", tgtB
	// Appending to a returned slice must not write into the store's array.
	one, err := s.Outbox(t.Context(), tgtA, 0, 1)
	if err != nil {
		t.Fatalf("Outbox = %v", err)
	}
	_ = append(one, watcher.OutboxEntry{Seq: 99})
	wantOutbox(t, mustOutbox(t, s, tgtA), 1, wantEvs)
	ts := mustTargets(t, s)
	ts[0] = tgtB
	if got := mustTargets(t, s); !slices.Equal(got, []watcher.Target{tgtA}) {
		t.Fatalf("Targets() after changing a returned slice = %v, want [%v]", got, tgtA)
	}
}
