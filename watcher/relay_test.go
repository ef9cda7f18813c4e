package watcher_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// relayRig is a Watcher without sources on the in-memory store and
// publisher, relaying batches of two, with n events committed to tg.
func relayRig(t *testing.T, tg watcher.Target, n int) (*watcher.Watcher, *store.Memory, *mempub.Publisher) {
	t.Helper()
	st, pub := store.NewMemory(), mempub.New()
	w, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: quiet, RelayWindow: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	commitEvents(t, st, tg, 0, n)
	return w, st, pub
}

// commitEvents commits events of instances ins-<from> to ins-<from+n-1>.
func commitEvents(t *testing.T, st *store.Memory, tg watcher.Target, from, n int) {
	t.Helper()
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var events []watcher.Event
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("ins-%d", i)
		events = append(events, watcher.Event{ID: watcher.EventID(tg, id, 1, "RUNNING", "STOPPED"), Target: tg,
			InstanceID: id, From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: at, PreviousObservedAt: at})
	}
	if _, _, err := st.Commit(t.Context(), tg, watcher.Commit{Events: events}); err != nil {
		t.Fatal(err)
	}
}

func publishedIDs(pub *mempub.Publisher) []string {
	var ids []string
	for _, e := range pub.Events() {
		ids = append(ids, e.InstanceID)
	}
	return ids
}

func TestRelayPublishesInCommitOrderWhileReadingAhead(t *testing.T) {
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	w, st, pub := relayRig(t, tg, 3)
	if n, err := w.RelayOnce(t.Context(), tg); n != 2 || err != nil {
		t.Fatalf("first relay = %d, %v; want 2", n, err)
	}
	// Committed after the first call read ahead: the next calls take them
	// after what was read ahead, in commit order.
	commitEvents(t, st, tg, 3, 2)
	for {
		n, err := w.RelayOnce(t.Context(), tg)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if got, want := publishedIDs(pub), []string{"ins-0", "ins-1", "ins-2", "ins-3", "ins-4"}; !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
}

func TestRelayDropsWhatItReadAheadWhenTheOutboxMoved(t *testing.T) {
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	w, st, pub := relayRig(t, tg, 5)
	if n, err := w.RelayOnce(t.Context(), tg); n != 2 || err != nil {
		t.Fatalf("first relay = %d, %v; want 2", n, err)
	}
	// Another relay of the same target took ins-2 meanwhile: what the first
	// call read ahead (ins-2, ins-3) no longer starts the outbox.
	if err := st.Acknowledge(t.Context(), tg, 3); err != nil {
		t.Fatal(err)
	}
	if n, err := w.RelayOnce(t.Context(), tg); n != 2 || err != nil {
		t.Fatalf("second relay = %d, %v; want 2", n, err)
	}
	if got, want := publishedIDs(pub), []string{"ins-0", "ins-1", "ins-3", "ins-4"}; !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v (nothing acknowledged again)", got, want)
	}
}

func TestRelayRereadsAfterAFailedPublish(t *testing.T) {
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	w, _, pub := relayRig(t, tg, 4)
	pub.FailAfter(1)
	if n, err := w.RelayOnce(t.Context(), tg); n != 1 || err == nil {
		t.Fatalf("first relay = %d, %v; want 1 and an error", n, err)
	}
	if n, err := w.RelayOnce(t.Context(), tg); n != 2 || err != nil {
		t.Fatalf("second relay = %d, %v; want 2", n, err)
	}
	if got, want := publishedIDs(pub), []string{"ins-0", "ins-1", "ins-2"}; !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
}
