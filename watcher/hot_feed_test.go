package watcher_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// A transitional state read by a scan's page is committed at the next hot
// round, observed at the page, while the scan is still running: the
// instance is in the hot set from then on, so its next change is a
// lookup's, within an interval. A new PENDING instance likewise (an
// appearance). The scan, committing later what it read earlier, rolls
// nothing back and repeats nothing.
func TestScanPageFeedsTheHotSetBeforeItsScanCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{"ins-a": watcher.StateRunning, "ins-b": watcher.StateRunning})
		w.paged = true
		stop := runWorld(t, w, 10*time.Second, nil)

		sleepUntil(start, 9500*time.Millisecond)
		w.set("ins-a", watcher.StateStopping)
		w.set("ins-new", watcher.StatePending)
		release := w.holdNext(true) // the scan at 10s hands its page over, then runs on until 24.5s
		sleepUntil(start, 10500*time.Millisecond)
		w.set("ins-a", watcher.StateStopped) // seen by the lookup at 11s
		sleepUntil(start, 12500*time.Millisecond)
		w.set("ins-new", watcher.StateRunning) // seen by the lookup at 13s
		sleepUntil(start, 24500*time.Millisecond)
		release()
		sleepUntil(start, 26500*time.Millisecond)
		events := stop()

		for id, want := range map[string][]string{
			"ins-a":   {"RUNNING>STOPPING#1 at 10s after 0s", "STOPPING>STOPPED#2 at 11s after 10s"},
			"ins-new": {"ABSENT>PENDING#1 at 10s", "PENDING>RUNNING#2 at 13s after 12s"},
			"ins-b":   nil,
		} {
			if got := timeline(events, id, start); !slices.Equal(got, want) {
				t.Errorf("%s events = %v, want %v", id, got, want)
			}
		}
	})
}

// The race of a page read before a hot lookup that commits first: the
// scan at 10s reads ins-a STARTING, and its page is handed over only at
// 11.5s, after the lookup at 11s saw RUNNING and committed. The page is
// older than the snapshot: it must not be committed (no RUNNING->STARTING),
// and neither must the scan's observation.
func TestScanPageOvertakenByAHotLookupIsNotCommitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{"ins-a": watcher.StateStopping})
		w.paged = true
		stop := runWorld(t, w, 10*time.Second, nil)

		sleepUntil(start, 9500*time.Millisecond)
		w.set("ins-a", watcher.StateStarting) // read by the lookup at 10s and by the scan at 10s
		releasePage := w.holdNextPage()
		releaseScan := w.holdNext(true)
		sleepUntil(start, 10500*time.Millisecond)
		w.set("ins-a", watcher.StateRunning) // read by the lookup at 11s
		sleepUntil(start, 11500*time.Millisecond)
		releasePage() // the page (STARTING, read at 10s) arrives; the round at 12s sees it
		sleepUntil(start, 12500*time.Millisecond)
		releaseScan()
		sleepUntil(start, 13500*time.Millisecond)
		events := stop()

		if got, want := chain(events, "ins-a"), []string{"STOPPING>STARTING#1", "STARTING>RUNNING#2"}; !slices.Equal(got, want) {
			t.Fatalf("ins-a events = %v, want %v: a stale page rolled the state back", got, want)
		}
	})
}

// An instance read on two pages of one scan in two states (the fleet moved
// while it was paged; which page read it later is unknown) is not
// committed early: the scan sets it aside, and it is not looked up.
func TestScanPagesDisagreeingOnAnInstanceAreLeftToTheScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{"ins-a": watcher.StateRunning, "ins-b": watcher.StateRunning})
		w.paged = true
		stop := runWorld(t, w, 10*time.Second, nil)

		sleepUntil(start, 9500*time.Millisecond)
		w.set("ins-a", watcher.StateStopping)
		w.set("ins-b", watcher.StateStopping)
		w.mu.Lock()
		w.twice = map[string]watcher.State{"ins-a": watcher.StateStarting}
		w.mu.Unlock()
		release := w.holdNext(true)
		sleepUntil(start, 14500*time.Millisecond)
		lookedUp := w.lookups("ins-a")
		release()
		sleepUntil(start, 15500*time.Millisecond)
		events := stop()

		if got := chain(events, "ins-a"); len(got) != 0 {
			t.Errorf("ins-a events = %v, want none: two pages disagreed on it", got)
		}
		if lookedUp != 0 {
			t.Errorf("ins-a looked up %d times before its scan committed, want 0", lookedUp)
		}
		if got, want := timeline(events, "ins-b", start), []string{"RUNNING>STOPPING#1 at 10s after 0s"}; !slices.Equal(got, want) {
			t.Errorf("ins-b events = %v, want %v: the page beside it is still committed early", got, want)
		}
	})
}

// timeline is the events of one instance as "FROM>TO#seq at T[ after P]"
// strings, times since start.
func timeline(events []watcher.Event, id string, start time.Time) []string {
	var out []string
	for _, e := range events {
		if e.InstanceID != id {
			continue
		}
		s := fmt.Sprintf("%s>%s#%d at %v", e.From, e.To, e.Sequence, e.ObservedAt.Sub(start))
		if !e.PreviousObservedAt.IsZero() {
			s += fmt.Sprintf(" after %v", e.PreviousObservedAt.Sub(start))
		}
		out = append(out, s)
	}
	return out
}

// An early commit of scan pages that fails with ErrReload (a replicated
// store fenced by another replica) drops the snapshot; the hot loop must
// then skip its round, not dereference it, and the next cycle reloads it.
func TestEarlyPageCommitFailingWithErrReloadDropsTheSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{"ins-a": watcher.StateRunning})
		w.paged = true
		st := &reloadStore{Memory: store.NewMemory()}
		pub := mempub.New()
		wt, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Interval: 10 * time.Second,
			HotInterval: time.Second, Logger: quiet},
			[]watcher.TargetSource{{Target: w.tg, Source: w.source(), Hot: hotLookuper{w}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- wt.Run(ctx) }()

		sleepUntil(start, 9500*time.Millisecond)
		w.set("ins-a", watcher.StateStopping)
		release := w.holdNext(true) // the scan at 10s hands its page over and is held
		sleepUntil(start, 10500*time.Millisecond)
		loads := st.failNext(fmt.Errorf("fenced: %w", watcher.ErrReload)) // the early commit at 11s
		sleepUntil(start, 12500*time.Millisecond)
		release()
		sleepUntil(start, 35*time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := st.failNext(nil); got <= loads {
			t.Fatalf("loads = %d after the failed early commit, want more than %d: the snapshot is loaded again", got, loads)
		}
		if got := chain(pub.Events(), "ins-a"); len(got) != 1 || got[0] != "RUNNING>STOPPING#1" {
			t.Fatalf("ins-a events = %v, want RUNNING>STOPPING#1 once (committed by a later cycle)", got)
		}
	})
}
