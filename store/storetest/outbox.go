package storetest

import (
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func testOutboxSeqs(t *testing.T, h Harness) {
	s := open(t, h)
	e1, e2 := events(tgtA, "one", 3, at(0)), events(tgtA, "two", 2, at(100))
	if first, last := mustCommit(t, s, tgtA, watcher.Commit{Events: e1}); first != 1 || last != 3 {
		t.Fatalf("first commit got sequences %d..%d, want 1..3", first, last)
	}
	if first, last := mustCommit(t, s, tgtA, watcher.Commit{Put: []watcher.Record{rec("ins-a", watcher.StateRunning, 0)}}); first != 0 || last != 0 {
		t.Fatalf("commit without events got sequences %d..%d, want 0, 0", first, last)
	}
	if first, last := mustCommit(t, s, tgtA, watcher.Commit{Events: e2}); first != 4 || last != 5 {
		t.Fatalf("third commit got sequences %d..%d, want 4..5", first, last)
	}
	wantOutbox(t, mustOutbox(t, s, tgtA), 1, append(e1, e2...))
}

func testOutboxPaging(t *testing.T, h Harness) {
	s := open(t, h)
	evs := events(tgtA, "p", 5, at(0))
	mustCommit(t, s, tgtA, watcher.Commit{Events: evs})
	for _, tc := range []struct {
		after     uint64
		max       int
		wantFirst uint64
		wantN     int
	}{
		{0, 2, 1, 2},
		{2, 2, 3, 2},
		{4, 2, 5, 1},
		{5, 2, 0, 0},
		{0, 100, 1, 5},
		{3, 1, 4, 1},
		{99, 10, 0, 0},
		{1<<64 - 1, 10, 0, 0},
	} {
		got, err := s.Outbox(t.Context(), tgtA, tc.after, tc.max)
		if err != nil {
			t.Fatalf("Outbox(after %d, max %d) = %v", tc.after, tc.max, err)
		}
		if len(got) != tc.wantN {
			t.Fatalf("Outbox(after %d, max %d) has %d entries, want %d", tc.after, tc.max, len(got), tc.wantN)
		}
		if tc.wantN > 0 {
			wantOutbox(t, got, tc.wantFirst, evs[tc.wantFirst-1:int(tc.wantFirst)-1+tc.wantN])
		}
	}
}

func testAcknowledge(t *testing.T, h Harness) {
	s := open(t, h)
	evs := events(tgtA, "k", 5, at(0))
	mustCommit(t, s, tgtA, watcher.Commit{Events: evs})

	mustAck(t, s, tgtA, 2)
	wantOutbox(t, mustOutbox(t, s, tgtA), 3, evs[2:])
	mustAck(t, s, tgtA, 2) // again: no-op
	mustAck(t, s, tgtA, 1) // lower: no-op
	wantOutbox(t, mustOutbox(t, s, tgtA), 3, evs[2:])
	if got, err := s.Outbox(t.Context(), tgtA, 0, 1); err != nil || len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("Outbox(after 0, max 1) after acknowledging 2 = %v, %v; want entry 3", got, err)
	}

	mustAck(t, s, tgtA, 5)
	if got := mustOutbox(t, s, tgtA); len(got) != 0 {
		t.Fatalf("outbox has %d entries after acknowledging all", len(got))
	}
	mustAck(t, s, tgtA, 5)
}

// testAcknowledgeLongPrefix acknowledges prefixes spanning many storage
// pages (an outbox that grew during a long broker outage), ending mid-page:
// exactly the acknowledged entries go, in one call, and the rest stay whole.
func testAcknowledgeLongPrefix(t *testing.T, h Harness) {
	s := open(t, h)
	evs := events(tgtA, "p", 5000, at(0))
	for i := 0; i < len(evs); i += 1000 {
		mustCommit(t, s, tgtA, watcher.Commit{Events: evs[i : i+1000]})
	}
	other := events(tgtB, "p", 3, at(0))
	mustCommit(t, s, tgtB, watcher.Commit{Events: other})

	mustAck(t, s, tgtA, 3217)
	wantOutbox(t, mustOutbox(t, s, tgtA), 3218, evs[3217:])
	mustAck(t, s, tgtA, 4999)
	wantOutbox(t, mustOutbox(t, s, tgtA), 5000, evs[4999:])
	wantOutbox(t, mustOutbox(t, s, tgtB), 1, other)
}

func testSeqsNotReused(t *testing.T, h Harness) {
	s := open(t, h)
	mustCommit(t, s, tgtA, watcher.Commit{Events: events(tgtA, "a", 3, at(0))})
	mustAck(t, s, tgtA, 3)
	more := events(tgtA, "b", 2, at(10))
	if first, last := mustCommit(t, s, tgtA, watcher.Commit{Events: more}); first != 4 || last != 5 {
		t.Fatalf("sequences after the outbox emptied = %d..%d, want 4..5", first, last)
	}
	wantOutbox(t, mustOutbox(t, s, tgtA), 4, more)
	mustAck(t, s, tgtA, 5)
	if h.Reopen == nil {
		return
	}
	s = reopen(t, h, s)
	again := events(tgtA, "c", 1, at(20))
	if first, last := mustCommit(t, s, tgtA, watcher.Commit{Events: again}); first != 6 || last != 6 {
		t.Fatalf("sequences after an emptied outbox and a reopen = %d..%d, want 6..6", first, last)
	}
	wantOutbox(t, mustOutbox(t, s, tgtA), 6, again)
}

func testOutboxStats(t *testing.T, h Harness) {
	s := open(t, h)
	evs := events(tgtA, "s", 3, at(0)) // observed at(0), at(1), at(2)
	mustCommit(t, s, tgtA, watcher.Commit{Events: evs[:2]})
	mustCommit(t, s, tgtA, watcher.Commit{Events: evs[2:]})
	for _, tc := range []struct {
		ackUpTo    uint64
		wantDepth  int
		wantOldest time.Time
	}{
		{0, 3, at(0)},
		{1, 2, at(1)},
		{2, 1, at(2)},
		{3, 0, time.Time{}},
	} {
		mustAck(t, s, tgtA, tc.ackUpTo)
		depth, oldest := mustStats(t, s, tgtA)
		if depth != tc.wantDepth || !oldest.Equal(tc.wantOldest) || oldest.IsZero() != tc.wantOldest.IsZero() {
			t.Fatalf("OutboxStats after acknowledging %d = %d, %v, want %d, %v", tc.ackUpTo, depth, oldest, tc.wantDepth, tc.wantOldest)
		}
	}
}
