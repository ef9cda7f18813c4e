// Package storetest is the conformance suite of watcher.Store: every store
// implementation runs it, so the in-memory store used by loop tests is known
// to behave like the durable ones. It relies only on the interface contract
// (no file, no single process), so a replicated store can run it unchanged.
package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Harness tells Run how to get stores of the implementation under test.
type Harness struct {
	// Open returns a new, empty store. The suite closes it when a test is
	// done with it; Open may also arrange a Close (Close is idempotent).
	Open func(t *testing.T) watcher.Store
	// Reopen closes s and returns a store over the same data, as a restart
	// would. Nil for a store that does not persist: Run then skips the tests
	// that need it.
	Reopen func(t *testing.T, s watcher.Store) watcher.Store
}

// Run runs the conformance suite against h, one subtest per property.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"EmptyTargetHasNothing", testEmptyTarget},
		{"CommitIsVisibleToLoadAndOutbox", testCommitVisible},
		{"LoadWalksRecordsInIDOrder", testLoadOrder},
		{"LoadStopsAtCallbackError", testLoadStops},
		{"OnlyPutRecordsChange", testOnlyPutChanges},
		{"DeleteRemovesRecords", testDelete},
		{"TombstonesKeepTheirSequence", testTombstones},
		{"MetaOnlyCommitChangesOnlyMeta", testMetaOnly},
		{"TimesRoundTrip", testTimes},
		{"CanceledCommitAppliesNothing", testCanceledCommit},
		{"OutboxSeqsAreContiguousInCommitOrder", testOutboxSeqs},
		{"OutboxPages", testOutboxPaging},
		{"AcknowledgeRemovesUpToAndIsIdempotent", testAcknowledge},
		{"AcknowledgeALongPrefix", testAcknowledgeLongPrefix},
		{"SeqsNeverReusedAfterOutboxEmpties", testSeqsNotReused},
		{"OutboxStatsReportDepthAndOldest", testOutboxStats},
		{"TargetsAreIsolated", testIsolation},
		{"TargetsAreListedSorted", testTargetsSorted},
		{"ConcurrentCommitsToDifferentTargets", testConcurrent},
		{"ReopenKeepsEverything", testReopen},
		{"ClosedStoreReturnsErrStoreClosed", testClosed},
		{"ResultsAreNotAliased", testNoAliasing},
		{"EnrichmentsCommitReplaceDeleteAndPersist", testEnrichmentsWithCommit},
		{"EnrichmentsWithoutAnIDAreRefused", testEnrichmentsRefused},
		{"EnrichmentsAreNotAliased", testEnrichmentsNotAliased},
		{"AttributionsPendWithTheirEventAndResolveOnce", testAttributionsResolveOnce},
		{"AttributionsPersistAndFollowUpsRoundTrip", testAttributionsPersist},
		{"AttributionsRefuseFollowUpsWithoutCompletes", testAttributionsRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// open returns a store from h that is closed when the test ends.
func open(t *testing.T, h Harness) watcher.Store {
	t.Helper()
	s := h.Open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen restarts s through h, or skips the test for a store that does not
// persist.
func reopen(t *testing.T, h Harness, s watcher.Store) watcher.Store {
	t.Helper()
	if h.Reopen == nil {
		t.Skip("store does not persist: no Reopen")
	}
	s = h.Reopen(t, s)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	tgtA = watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	tgtB = watcher.Target{Account: "prod", Region: "ap-shanghai"}

	// t0 has nanoseconds and a zone, to prove times are kept exactly.
	t0 = time.Date(2026, 11, 26, 23, 10, 0, 123456789, time.FixedZone("CST", 8*3600))
)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func rec(id string, state watcher.State, seq uint64) watcher.Record {
	return watcher.Record{InstanceID: id, State: state, Sequence: seq, Since: at(0), LastSeen: at(30)}
}

func event(target watcher.Target, id string, from, to watcher.State, seq uint64, observed time.Time) watcher.Event {
	return watcher.Event{
		ID:                 fmt.Sprintf("%s-%s-%d", target, id, seq),
		Target:             target,
		InstanceID:         id,
		From:               from,
		To:                 to,
		Sequence:           seq,
		ObservedAt:         observed,
		PreviousObservedAt: observed.Add(-30 * time.Second),
	}
}

// events returns n events of target for instances ins-<prefix>-<i>,
// observed one second apart from start.
func events(target watcher.Target, prefix string, n int, start time.Time) []watcher.Event {
	out := make([]watcher.Event, n)
	for i := range out {
		out[i] = event(target, fmt.Sprintf("ins-%s-%d", prefix, i), watcher.StateRunning, watcher.StateStopped, 1, start.Add(time.Duration(i)*time.Second))
	}
	return out
}

func mustCommit(t *testing.T, s watcher.Store, target watcher.Target, c watcher.Commit) (first, last uint64) {
	t.Helper()
	first, last, err := s.Commit(t.Context(), target, c)
	if err != nil {
		t.Fatalf("Commit(%s) = %v", target, err)
	}
	return first, last
}

func mustLoad(t *testing.T, s watcher.Store, target watcher.Target) ([]watcher.Record, watcher.ScanMeta) {
	t.Helper()
	var recs []watcher.Record
	meta, err := s.Load(t.Context(), target, func(r watcher.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Load(%s) = %v", target, err)
	}
	return recs, meta
}

// mustOutbox returns target's whole outbox, read in pages of 7.
func mustOutbox(t *testing.T, s watcher.Store, target watcher.Target) []watcher.OutboxEntry {
	t.Helper()
	var all []watcher.OutboxEntry
	after := uint64(0)
	for {
		page, err := s.Outbox(t.Context(), target, after, 7)
		if err != nil {
			t.Fatalf("Outbox(%s, %d, 7) = %v", target, after, err)
		}
		if len(page) > 7 {
			t.Fatalf("Outbox(%s, %d, 7) returned %d entries", target, after, len(page))
		}
		all = append(all, page...)
		if len(page) < 7 {
			return all
		}
		after = page[len(page)-1].Seq
	}
}

func mustStats(t *testing.T, s watcher.Store, target watcher.Target) (int, time.Time) {
	t.Helper()
	depth, oldest, err := s.OutboxStats(t.Context(), target)
	if err != nil {
		t.Fatalf("OutboxStats(%s) = %v", target, err)
	}
	return depth, oldest
}

func mustAck(t *testing.T, s watcher.Store, target watcher.Target, upTo uint64) {
	t.Helper()
	if err := s.Acknowledge(t.Context(), target, upTo); err != nil {
		t.Fatalf("Acknowledge(%s, %d) = %v", target, upTo, err)
	}
}

func mustTargets(t *testing.T, s watcher.Store) []watcher.Target {
	t.Helper()
	ts, err := s.Targets(t.Context())
	if err != nil {
		t.Fatalf("Targets() = %v", err)
	}
	return ts
}

// Comparisons: times are compared with Equal, since a store may return
// them in another location.

func recordEqual(a, b watcher.Record) bool {
	return a.InstanceID == b.InstanceID && a.State == b.State && a.Sequence == b.Sequence &&
		a.Since.Equal(b.Since) && a.LastSeen.Equal(b.LastSeen) && a.Missing == b.Missing
}

func eventEqual(a, b watcher.Event) bool {
	return a.ID == b.ID && a.Target == b.Target && a.InstanceID == b.InstanceID &&
		a.From == b.From && a.To == b.To && a.Sequence == b.Sequence &&
		a.ObservedAt.Equal(b.ObservedAt) && a.PreviousObservedAt.Equal(b.PreviousObservedAt)
}

func metaEqual(a, b watcher.ScanMeta) bool {
	return a.Baselined == b.Baselined && a.LastScan.Equal(b.LastScan) && a.LastComplete.Equal(b.LastComplete) &&
		a.Scans == b.Scans && a.CompleteScans == b.CompleteScans
}

func wantRecords(t *testing.T, got, want []watcher.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("loaded %d records %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if !recordEqual(got[i], want[i]) {
			t.Fatalf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func wantMeta(t *testing.T, got, want watcher.ScanMeta) {
	t.Helper()
	if !metaEqual(got, want) {
		t.Fatalf("meta = %+v, want %+v", got, want)
	}
}

// wantOutbox checks that entries are exactly events with seqs from first on.
func wantOutbox(t *testing.T, got []watcher.OutboxEntry, first uint64, want []watcher.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("outbox has %d entries, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Seq != first+uint64(i) {
			t.Fatalf("outbox entry %d has seq %d, want %d", i, e.Seq, first+uint64(i))
		}
		if !eventEqual(e.Event, want[i]) {
			t.Fatalf("outbox entry %d = %+v, want %+v", e.Seq, e.Event, want[i])
		}
	}
}
