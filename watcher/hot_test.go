package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// world is a target whose truth the test sets as (fake) time goes by. Its
// scans and hot lookups read the truth when they are called and can be
// held before they answer, so a test decides the order in which a scan's
// page and a hot lookup are read and committed. Made for synctest bubbles.
type world struct {
	tg watcher.Target

	mu     sync.Mutex
	truth  map[string]watcher.State
	asked  map[string]int // hot lookups per instance
	failAt int            // hot lookups fail from this call on (0: never)
	calls  int
	// holdScan, holdHot: the next scan or hot lookup reads the truth, then
	// waits until the channel is closed.
	holdScan, holdHot chan struct{}
	// paged: the world is a PageScanner, whose scan reads the truth as one
	// page and hands it over (after holdPage, if set) before holdScan.
	// twice: instances the next paged scan reads again, on a second page,
	// in another state.
	paged    bool
	holdPage chan struct{}
	twice    map[string]watcher.State
}

func newWorld(truth map[string]watcher.State) *world {
	return &world{tg: watcher.Target{Account: "acct", Region: "hot-region"}, truth: truth, asked: map[string]int{}}
}

func (w *world) set(id string, st watcher.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st == watcher.Absent {
		delete(w.truth, id)
		return
	}
	w.truth[id] = st
}

// holdNextPage makes the next paged scan wait, after reading, until the
// returned func is called, before it hands its page over.
func (w *world) holdNextPage() (release func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	w.holdPage = ch
	return func() { close(ch) }
}

// holdNext makes the next scan (or hot lookup) wait, after reading, until
// the returned func is called.
func (w *world) holdNext(scan bool) (release func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if scan {
		w.holdScan = ch
	} else {
		w.holdHot = ch
	}
	return func() { close(ch) }
}

func (w *world) lookups(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked[id]
}

func (w *world) Scan(ctx context.Context) (watcher.Scan, error) { return w.scan(ctx, nil) }

// scan reads the truth; with page set it hands what it read over as pages
// (see world.paged) before it answers.
func (w *world) scan(ctx context.Context, page func(watcher.Page)) (watcher.Scan, error) {
	w.mu.Lock()
	started := time.Now()
	var obs []watcher.Observation
	for _, id := range slices.Sorted(maps.Keys(w.truth)) {
		obs = append(obs, watcher.Observation{InstanceID: id, State: w.truth[id]})
	}
	hold, holdPage, twice := w.holdScan, w.holdPage, w.twice
	w.holdScan, w.holdPage, w.twice = nil, nil, nil
	w.mu.Unlock()
	wait := func(ch chan struct{}) error {
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var unreadable []string
	if page != nil {
		if err := wait(holdPage); err != nil {
			return watcher.Scan{}, err
		}
		page(watcher.Page{Observations: obs, Started: started, Done: time.Now()})
		var again []watcher.Observation
		for _, id := range slices.Sorted(maps.Keys(twice)) {
			again = append(again, watcher.Observation{InstanceID: id, State: twice[id]})
			unreadable = append(unreadable, id)
		}
		if len(again) > 0 {
			page(watcher.Page{Observations: again, Started: started, Done: time.Now()})
		}
		obs = slices.DeleteFunc(obs, func(o watcher.Observation) bool { _, ok := twice[o.InstanceID]; return ok })
	}
	if err := wait(hold); err != nil {
		return watcher.Scan{}, err
	}
	return watcher.Scan{Target: w.tg, Observations: obs, Unreadable: unreadable, Complete: len(unreadable) == 0,
		Stats: watcher.ScanStats{Started: started, Duration: time.Since(started)}}, nil
}

// pagedWorld is a world whose scans hand their pages over.
type pagedWorld struct{ *world }

func (p pagedWorld) ScanPages(ctx context.Context, page func(watcher.Page)) (watcher.Scan, error) {
	return p.scan(ctx, page)
}

// Lookup answers the scans' disappearance candidates.
func (w *world) Lookup(_ context.Context, ids []string) (watcher.LookupResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.read(ids), nil
}

func (w *world) read(ids []string) watcher.LookupResult {
	var lr watcher.LookupResult
	for _, id := range ids {
		if st, ok := w.truth[id]; ok {
			lr.Found = append(lr.Found, watcher.Observation{InstanceID: id, State: st})
		} else {
			lr.Absent = append(lr.Absent, id)
		}
	}
	return lr
}

// source is what the watcher scans: w, or w as a PageScanner.
func (w *world) source() watcher.Source {
	if w.paged {
		return pagedWorld{w}
	}
	return w
}

// hotLookuper is the world's hot-set side.
type hotLookuper struct{ w *world }

func (h hotLookuper) Lookup(ctx context.Context, ids []string) (watcher.LookupResult, error) {
	w := h.w
	w.mu.Lock()
	w.calls++
	for _, id := range ids {
		w.asked[id]++
	}
	if w.failAt > 0 && w.calls >= w.failAt {
		w.mu.Unlock()
		return watcher.LookupResult{}, errors.New("lookup: InternalError")
	}
	lr := w.read(ids)
	hold := w.holdHot
	w.holdHot = nil
	w.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return watcher.LookupResult{}, ctx.Err()
		}
	}
	return lr, nil
}

// hotLog records what Observer.HotLookedUp is told.
type hotLog struct {
	mu         sync.Mutex
	superseded int
	events     int
}

func (o *hotLog) ScanCommitted(watcher.Target, watcher.Scan, watcher.Commit, map[watcher.State]int, int) {
}
func (o *hotLog) CycleFailed(watcher.Target, error)                               {}
func (o *hotLog) Relayed(watcher.Target, int, time.Duration, error)               {}
func (o *hotLog) OutboxState(watcher.Target, int, time.Time)                      {}
func (o *hotLog) Enriched(watcher.Target, string, int, int, time.Duration, error) {}
func (o *hotLog) HotLookedUp(_ watcher.Target, _, _ int, c watcher.Commit, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if errors.Is(err, watcher.ErrHotSuperseded) {
		o.superseded++
	}
	o.events += len(c.Events)
}

// runWorld runs a Watcher over w in a synctest bubble, its scans every
// interval and its hot set every second, from a baseline of w's truth at
// time 0; stop ends it and returns every event published, in order.
func runWorld(t *testing.T, w *world, interval time.Duration, obs watcher.Observer) (stop func() []watcher.Event) {
	t.Helper()
	pub := mempub.New()
	wt, err := watcher.New(watcher.Config{Store: store.NewMemory(), Publisher: pub, Interval: interval,
		HotInterval: time.Second, Logger: quiet, Observer: obs},
		[]watcher.TargetSource{{Target: w.tg, Source: w.source(), Hot: hotLookuper{w}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- wt.Run(ctx) }()
	return func() []watcher.Event {
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		return pub.Events()
	}
}

// chain is the events of one instance as "FROM>TO#seq" strings.
func chain(events []watcher.Event, id string) []string {
	var out []string
	for _, e := range events {
		if e.InstanceID == id {
			out = append(out, fmt.Sprintf("%s>%s#%d", e.From, e.To, e.Sequence))
		}
	}
	return out
}

// sleepUntil sleeps on the bubble's clock until d after start.
func sleepUntil(start time.Time, d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

// An instance seen in a transitional state is looked up every second until
// it is stable, and its change is an event observed within a second, with
// the previous lookup as the start of its window; a stable instance is
// never looked up; a new PENDING instance joins at once; a lookup that does
// not find an instance, or fails, proves nothing.
func TestHotSetSeesChangesOutOfTransitionalStatesWithinAnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{
			"ins-stopping": watcher.StateStopping, "ins-running": watcher.StateRunning,
			"ins-leaving": watcher.StateTerminating,
		})
		stop := runWorld(t, w, 10*time.Second, nil)

		sleepUntil(start, 2500*time.Millisecond)
		w.set("ins-stopping", watcher.StateStopped) // seen by the lookup at 3s
		w.set("ins-leaving", watcher.Absent)        // a lookup's absence is no disappearance
		sleepUntil(start, 9500*time.Millisecond)
		w.set("ins-new", watcher.StatePending) // appears at the scan at 10s
		sleepUntil(start, 10500*time.Millisecond)
		w.set("ins-new", watcher.StateRunning) // seen by the lookup at 11s
		sleepUntil(start, 12500*time.Millisecond)
		lookedUp := w.lookups("ins-stopping")
		w.mu.Lock()
		w.failAt = w.calls + 1 // from now on every hot lookup fails
		w.mu.Unlock()
		w.set("ins-leaving", watcher.StateTerminating) // back: a failed lookup must not matter either
		sleepUntil(start, 15500*time.Millisecond)
		events := stop()

		if got, want := lookedUp, 3; got != want {
			t.Errorf("ins-stopping looked up %d times (at 1s, 2s, 3s), want %d: it left the hot set once STOPPED", got, want)
		}
		if got := w.lookups("ins-running"); got != 0 {
			t.Errorf("ins-running (stable) looked up %d times, want 0", got)
		}
		if got, want := chain(events, "ins-stopping"), []string{"STOPPING>STOPPED#1"}; !slices.Equal(got, want) {
			t.Fatalf("ins-stopping events = %v, want %v", got, want)
		}
		for _, e := range events {
			if e.InstanceID != "ins-stopping" {
				continue
			}
			if got, want := e.ObservedAt.Sub(start), 3*time.Second; got != want {
				t.Errorf("STOPPED observed at %v, want %v (the first lookup after the change at 2.5s)", got, want)
			}
			if got, want := e.PreviousObservedAt.Sub(start), 2*time.Second; got != want {
				t.Errorf("previousObservedAt = %v, want %v (the previous lookup)", got, want)
			}
		}
		if got, want := chain(events, "ins-new"), []string{"ABSENT>PENDING#1", "PENDING>RUNNING#2"}; !slices.Equal(got, want) {
			t.Fatalf("ins-new events = %v, want %v", got, want)
		}
		if e := events[len(events)-1]; e.InstanceID != "ins-new" || e.ObservedAt.Sub(start) != 11*time.Second {
			t.Errorf("last event %s %s>%s at %v, want ins-new RUNNING at 11s", e.InstanceID, e.From, e.To, e.ObservedAt.Sub(start))
		}
		if got := chain(events, "ins-leaving"); len(got) != 0 {
			t.Errorf("ins-leaving events = %v, want none: only complete scans and a lookup declare an instance gone", got)
		}
	})
}

// The race of a scan page read before a hot lookup that commits after it:
// the scan reads STOPPING at 10s and is held; the hot lookup at 11s sees
// STOPPED and commits; then the scan commits. Its STOPPING is older than
// the snapshot's STOPPED and must not roll it back (no STOPPED->STOPPING,
// no flapping).
func TestScanPageReadBeforeAHotLookupDoesNotRollItBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{"ins-a": watcher.StateStopping, "ins-b": watcher.StateRunning})
		stop := runWorld(t, w, 10*time.Second, nil)

		sleepUntil(start, 9500*time.Millisecond)
		release := w.holdNext(true) // the scan at 10s reads STOPPING, then waits
		sleepUntil(start, 10500*time.Millisecond)
		w.set("ins-a", watcher.StateStopped) // the lookup at 11s sees it
		w.set("ins-b", watcher.StateStopped) // stable: only the scan at 20s sees it
		sleepUntil(start, 11500*time.Millisecond)
		release() // the scan commits its older page now
		sleepUntil(start, 21500*time.Millisecond)
		events := stop()

		if got, want := chain(events, "ins-a"), []string{"STOPPING>STOPPED#1"}; !slices.Equal(got, want) {
			t.Fatalf("ins-a events = %v, want %v: a stale page rolled the state back", got, want)
		}
		if got, want := chain(events, "ins-b"), []string{"RUNNING>STOPPED#1"}; !slices.Equal(got, want) {
			t.Fatalf("ins-b events = %v, want %v", got, want)
		}
		for _, e := range events {
			if e.InstanceID == "ins-b" && e.ObservedAt.Before(start.Add(20*time.Second)) {
				t.Errorf("ins-b STOPPED observed at %v, want by the scan at 20s", e.ObservedAt.Sub(start))
			}
		}
	})
}

// The other order: a hot lookup reads STARTING at 11s and is held; the scan
// at 12s reads RUNNING and commits; then the lookup answers. Its STARTING is
// older than the scan's RUNNING: it is set aside (superseded), not turned
// into RUNNING->STARTING.
func TestHotLookupOvertakenByAScanIsSetAside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := newWorld(map[string]watcher.State{"ins-a": watcher.StateStarting})
		obs := &hotLog{}
		stop := runWorld(t, w, 12*time.Second, obs)

		sleepUntil(start, 10500*time.Millisecond)
		release := w.holdNext(false) // the lookup at 11s reads STARTING, then waits
		sleepUntil(start, 11500*time.Millisecond)
		w.set("ins-a", watcher.StateRunning) // the scan at 12s sees it
		sleepUntil(start, 12500*time.Millisecond)
		release()
		sleepUntil(start, 14500*time.Millisecond)
		events := stop()

		if got, want := chain(events, "ins-a"), []string{"STARTING>RUNNING#1"}; !slices.Equal(got, want) {
			t.Fatalf("ins-a events = %v, want %v: a stale lookup rolled the state back", got, want)
		}
		obs.mu.Lock()
		defer obs.mu.Unlock()
		if got, want := obs.superseded, 1; got != want {
			t.Errorf("superseded hot lookups = %d, want %d", got, want)
		}
		if got, want := obs.events, 0; got != want {
			t.Errorf("events from hot lookups = %d, want %d (the change was the scan's)", got, want)
		}
	})
}
