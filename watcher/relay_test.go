package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// heldAcks is a store whose Acknowledge calls each wait for the test to
// release them, with the error they should fail with (nil: done).
type heldAcks struct {
	*store.Memory
	started chan uint64
	release chan error
}

func (h *heldAcks) Acknowledge(ctx context.Context, tg watcher.Target, upTo uint64) error {
	h.started <- upTo
	if err := <-h.release; err != nil {
		return err
	}
	return h.Memory.Acknowledge(ctx, tg, upTo)
}

// relayResult is what a RelayOnce run in the background returned.
type relayResult struct {
	n   int
	err error
}

func relayInBackground(ctx context.Context, w *watcher.Watcher, tg watcher.Target) <-chan relayResult {
	done := make(chan relayResult, 1)
	go func() {
		n, err := w.RelayOnce(ctx, tg)
		done <- relayResult{n, err}
	}()
	return done
}

func mustReturn(t *testing.T, what string, done <-chan relayResult) relayResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return in 10 s", what)
		return relayResult{}
	}
}

func TestRelayDeletesWhileItPublishesTheNextBatch(t *testing.T) {
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	mem, pub := store.NewMemory(), mempub.New()
	st := &heldAcks{Memory: mem, started: make(chan uint64, 1), release: make(chan error)}
	w, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: quiet, RelayWindow: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	commitEvents(t, mem, tg, 0, 5)
	ctx := t.Context()

	// A next batch waits: the delete of ins-0, ins-1 runs after the call.
	if r := mustReturn(t, "first relay (its delete held)", relayInBackground(ctx, w, tg)); r.n != 2 || r.err != nil {
		t.Fatalf("first relay = %+v, want 2", r)
	}
	if got := <-st.started; got != 2 {
		t.Fatalf("delete up to %d, want 2", got)
	}
	// The second call publishes ins-2, ins-3 while that delete is held,
	// and does not return before it ends; it reports its failure.
	second := relayInBackground(ctx, w, tg)
	if _, err := pub.WaitFor(ctx, 4); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-second:
		t.Fatalf("second relay returned %+v before the delete it overlaps", r)
	default:
	}
	st.release <- errors.New("disk full")
	if r := mustReturn(t, "second relay", second); r.n != 0 || r.err == nil {
		t.Fatalf("second relay = %+v, want 0 and the delete's error", r)
	}

	// Nothing was deleted: the next calls start again at the head, and the
	// last batch (nothing after it) is deleted before the call returns.
	relayAndDelete := func(what string, wantUpTo uint64, wantN int) {
		t.Helper()
		done := relayInBackground(ctx, w, tg)
		if got := <-st.started; got != wantUpTo {
			t.Fatalf("%s: delete up to %d, want %d", what, got, wantUpTo)
		}
		st.release <- nil
		if r := mustReturn(t, what, done); r.n != wantN || r.err != nil {
			t.Fatalf("%s = %+v, want %d", what, r, wantN)
		}
	}
	relayAndDelete("third relay (ins-0, ins-1 again)", 2, 2)
	relayAndDelete("fourth relay", 4, 2)
	relayAndDelete("fifth relay", 5, 1)
	if depth, _, err := mem.OutboxStats(ctx, tg); depth != 0 || err != nil {
		t.Fatalf("outbox depth %d (%v) when the last relay returned, want 0", depth, err)
	}
	// The third and fourth calls re-sent ins-0 to ins-3 (their deletes
	// above): duplicates, which the publisher, like the stream, dropped.
	want := []string{"ins-0", "ins-1", "ins-2", "ins-3", "ins-4"}
	if got := publishedIDs(pub); !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
}

func TestRelayRestartedDuringABackgroundDeleteResendsOnlyDuplicates(t *testing.T) {
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	mem, pub := store.NewMemory(), mempub.New()
	commitEvents(t, mem, tg, 0, 6)
	ctx := t.Context()

	// The first process publishes ins-0 to ins-3 while its delete of ins-0,
	// ins-1 hangs, and is gone before any delete lands.
	held := &heldAcks{Memory: mem, started: make(chan uint64, 1), release: make(chan error)}
	t.Cleanup(func() { close(held.release) }) // lets the first process's goroutines end
	first, err := watcher.New(watcher.Config{Store: held, Publisher: pub, Logger: quiet, RelayWindow: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustReturn(t, "first relay", relayInBackground(ctx, first, tg)); r.n != 2 || r.err != nil {
		t.Fatalf("first relay = %+v, want 2", r)
	}
	<-held.started
	_ = relayInBackground(ctx, first, tg) // publishes ins-2, ins-3, then waits for the hung delete forever
	if _, err := pub.WaitFor(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if depth, _, _ := mem.OutboxStats(ctx, tg); depth != 6 {
		t.Fatalf("outbox depth %d, want all 6 still there", depth)
	}

	// The next process on the same store starts again at the head: the
	// published events go again (duplicates, dropped), then the rest.
	second, err := watcher.New(watcher.Config{Store: mem, Publisher: pub, Logger: quiet, RelayWindow: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for {
		n, err := second.RelayOnce(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		sent += n
	}
	if sent != 6 {
		t.Fatalf("the second process relayed %d events, want all 6 (4 of them again)", sent)
	}
	if depth, _, _ := mem.OutboxStats(ctx, tg); depth != 0 {
		t.Fatalf("outbox depth %d after the second process drained it, want 0", depth)
	}
	want := []string{"ins-0", "ins-1", "ins-2", "ins-3", "ins-4", "ins-5"}
	if got := publishedIDs(pub); !slices.Equal(got, want) {
		t.Fatalf("published %v, want each once, in order: %v", got, want)
	}
}

// flakyDeletes is a store whose Acknowledge fails at random, half the time
// after deleting (the outcome a caller cannot tell from a failure).
type flakyDeletes struct {
	*store.Memory
	rnd *rand.Rand
}

func (f *flakyDeletes) Acknowledge(ctx context.Context, tg watcher.Target, upTo uint64) error {
	switch f.rnd.IntN(5) {
	case 0:
		return errors.New("injected: nothing deleted")
	case 1:
		_ = f.Memory.Acknowledge(ctx, tg, upTo)
		return errors.New("injected: deleted, reported failed")
	}
	return f.Memory.Acknowledge(ctx, tg, upTo)
}

func TestRelayUnderRandomFaultsPublishesEveryEventOnceInOrder(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
			rnd := rand.New(rand.NewPCG(seed, 1))
			mem, pub := store.NewMemory(), mempub.New()
			st := &flakyDeletes{Memory: mem, rnd: rand.New(rand.NewPCG(seed, 2))}
			w, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: quiet, RelayWindow: 1 + rnd.IntN(4)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			committed := 0
			for range 60 {
				switch rnd.IntN(6) {
				case 0:
					n := 1 + rnd.IntN(7)
					commitEvents(t, mem, tg, committed, n)
					committed += n
				case 1:
					pub.FailAfter(rnd.IntN(3))
				case 2:
					pub.DropAcksAfter(rnd.IntN(3))
				}
				_, _ = w.RelayOnce(t.Context(), tg) // failures are the point; the end checks the result
			}
			// Faults end (the publisher's apply once; deletes still fail at
			// random): the relay drains the outbox.
			for i := 0; ; i++ {
				if i > 1000 {
					t.Fatal("the outbox never drained")
				}
				n, err := w.RelayOnce(t.Context(), tg)
				if depth, _, _ := mem.OutboxStats(t.Context(), tg); err == nil && n == 0 && depth == 0 {
					break
				}
			}
			var want []string
			for i := range committed {
				want = append(want, fmt.Sprintf("ins-%d", i))
			}
			if got := publishedIDs(pub); !slices.Equal(got, want) {
				t.Fatalf("published %v,\nwant each of the %d committed once, in commit order", got, committed)
			}
		})
	}
}
