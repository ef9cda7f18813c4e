package jsstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/store/jsstore"
	"github.com/cvmwatch/cvmwatch/watcher"
)

var tgt = watcher.Target{Account: "prod", Region: "ap-guangzhou"}

// transition commits ins-1's move to state with sequence seq and its event.
func transition(state watcher.State, seq uint64) watcher.Commit {
	now := time.Date(2026, 11, 27, 0, 0, int(seq), 0, time.UTC)
	return watcher.Commit{
		Put: []watcher.Record{{InstanceID: "ins-1", State: state, Sequence: seq, Since: now, LastSeen: now}},
		Events: []watcher.Event{{ID: watcher.EventID(tgt, "ins-1", seq, watcher.StateRunning, state), Target: tgt,
			InstanceID: "ins-1", From: watcher.StateRunning, To: state, Sequence: seq, ObservedAt: now}},
		Meta: watcher.ScanMeta{Baselined: true, Scans: seq},
	}
}

func mustLoadOne(t *testing.T, s *jsstore.Store) watcher.Record {
	t.Helper()
	var got []watcher.Record
	if _, err := s.Load(t.Context(), tgt, func(r watcher.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatalf("Load = %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("Load gave %d records, want 1", len(got))
	}
	return got[0]
}

// A replica that lost the target without noticing (old) cannot commit over
// the new owner's commit: the server refuses its write, nothing of it is
// visible, and it must load again before committing.
func TestStaleWriterIsFenced(t *testing.T) {
	js := MustJetStream(t, MustStartEmbedded(t))
	o := freshOptions(1)
	old, next := MustOpen(t, js, o), MustOpen(t, js, o)
	if _, _, err := old.Commit(t.Context(), tgt, transition(watcher.StateStopped, 1)); err != nil {
		t.Fatalf("old owner's commit = %v", err)
	}
	// Takeover: the new owner loads what the old one left and continues.
	if got := mustLoadOne(t, next); got.Sequence != 1 || got.State != watcher.StateStopped {
		t.Fatalf("new owner loaded %+v, want STOPPED seq 1", got)
	}
	if first, _, err := next.Commit(t.Context(), tgt, transition(watcher.StateRunning, 2)); err != nil || first != 2 {
		t.Fatalf("new owner's commit = %d, %v; want outbox seq 2 (continuing the old owner's)", first, err)
	}
	// The old owner, resuming, derives seq 2 with other content: a fork.
	_, _, err := old.Commit(t.Context(), tgt, transition(watcher.StateStarting, 2))
	if !errors.Is(err, jsstore.ErrFenced) || !errors.Is(err, jsstore.ErrReload) {
		t.Fatalf("stale commit = %v, want ErrFenced and ErrReload", err)
	}
	if _, _, err := old.Commit(t.Context(), tgt, transition(watcher.StateStarting, 2)); !errors.Is(err, jsstore.ErrReload) || errors.Is(err, jsstore.ErrFenced) {
		t.Fatalf("commit after a fenced one = %v, want ErrReload without writing", err)
	}

	reader := MustOpen(t, js, o)
	if got := mustLoadOne(t, reader); got.Sequence != 2 || got.State != watcher.StateRunning {
		t.Fatalf("journal holds %+v, want the new owner's RUNNING seq 2", got)
	}
	out, err := reader.Outbox(t.Context(), tgt, 0, 10)
	if err != nil || len(out) != 2 || out[1].Event.To != watcher.StateRunning {
		t.Fatalf("outbox = %+v, %v; want the old owner's event then the new owner's", out, err)
	}
	// Loading again lifts the refusal; the next commit continues the journal.
	if got := mustLoadOne(t, old); got.Sequence != 2 {
		t.Fatalf("old owner reloaded %+v", got)
	}
	if first, _, err := old.Commit(t.Context(), tgt, transition(watcher.StateStopped, 3)); err != nil || first != 3 {
		t.Fatalf("commit after Load = %d, %v; want 3, nil", first, err)
	}
}

// A write cut short after its first part (the writer died) is ignored by
// readers, and the next writer continues after it.
func TestTornWriteIsIgnored(t *testing.T) {
	js := MustJetStream(t, MustStartEmbedded(t))
	o := freshOptions(1)
	s := MustOpen(t, js, o)
	if _, _, err := s.Commit(t.Context(), tgt, transition(watcher.StateStopped, 1)); err != nil {
		t.Fatal(err)
	}
	// The first of two parts of a commit putting a RUNNING record.
	torn := &nats.Msg{Subject: o.Prefix + ".prod.ap-guangzhou", Header: nats.Header{"Cvmwatch-Part": []string{"1/2"}},
		Data: []byte{'r', 5, 'i', 'n', 's', '-', '1'}}
	if _, err := js.PublishMsg(t.Context(), torn); err != nil {
		t.Fatal(err)
	}
	next := MustOpen(t, js, o)
	if got := mustLoadOne(t, next); got.State != watcher.StateStopped {
		t.Fatalf("loaded %+v after a torn write, want the STOPPED record", got)
	}
	if _, _, err := next.Commit(t.Context(), tgt, transition(watcher.StateRunning, 2)); err != nil {
		t.Fatalf("commit after a torn write = %v", err)
	}
	if got := mustLoadOne(t, MustOpen(t, js, o)); got.Sequence != 2 {
		t.Fatalf("loaded %+v, want seq 2", got)
	}
}

// Compaction keeps a journal's length bounded and its content whole.
func TestCompactionBoundsTheJournal(t *testing.T) {
	js := MustJetStream(t, MustStartEmbedded(t))
	o := freshOptions(1)
	s := MustOpen(t, js, o)
	for i := range 20 {
		if _, last, err := s.Commit(t.Context(), tgt, transition(watcher.StateStopped, uint64(i+1))); err != nil {
			t.Fatal(err)
		} else if err := s.Acknowledge(t.Context(), tgt, last); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(t.Context(), o.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects[o.Prefix+".prod.ap-guangzhou"]; got > uint64(o.CompactEvery)+1 {
		t.Fatalf("journal has %d messages after 40 writes, want at most %d (compacted every %d)", got, o.CompactEvery+1, o.CompactEvery)
	}
	if got := mustLoadOne(t, MustOpen(t, js, o)); got.Sequence != 20 {
		t.Fatalf("loaded %+v after compactions, want seq 20", got)
	}
	if first, _, err := MustOpen(t, js, o).Commit(t.Context(), tgt, transition(watcher.StateRunning, 21)); err != nil || first != 21 {
		t.Fatalf("commit after compactions = %d, %v; want outbox seq 21", first, err)
	}
}
