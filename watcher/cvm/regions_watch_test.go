package cvm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// fakeRegions is a cvm.RegionSource whose answer the test sets.
type fakeRegions struct {
	mu      sync.Mutex
	regions []string
	err     error
	calls   int
}

func (f *fakeRegions) set(err error, regions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regions, f.err = regions, err
}

func (f *fakeRegions) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.regions), nil
}

func (f *fakeRegions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// added records the regions OnNew was called for, and fails those in fail.
type added struct {
	mu   sync.Mutex
	got  []string
	fail map[string]bool
}

func (a *added) onNew(_ context.Context, region string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, region)
	if a.fail[region] {
		return errors.New("cannot watch " + region)
	}
	return nil
}

func (a *added) setFail(region string, fail bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail[region] = fail
}

func (a *added) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// TestRegionWatcher runs the watcher on synctest's fake clock: it lists
// once per interval, never before the first; new regions are reported once;
// regions that vanish stay known; a failed listing keeps the known regions;
// a failed OnNew is tried again at the next listing.
func TestRegionWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Hour
		src := &fakeRegions{}
		a := &added{fail: map[string]bool{}}
		log, logs := newTestLogger()
		w := &cvm.RegionWatcher{Lister: src, Interval: interval, OnNew: a.onNew, Logger: log}

		src.set(nil, "ap-guangzhou", "ap-shanghai")
		got, err := w.Resolve(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"ap-guangzhou", "ap-shanghai"}; !slices.Equal(got, want) {
			t.Fatalf("Resolve = %v, want %v", got, want)
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()

		start := time.Now()
		listings := 1 // Resolve's
		// check waits for the watcher to settle and checks the listings made
		// so far and every OnNew call since the start.
		check := func(what string, wantNew ...string) {
			t.Helper()
			synctest.Wait()
			if got := src.count(); got != listings {
				t.Fatalf("%s (%v): %d listings, want %d", what, time.Since(start), got, listings)
			}
			if got := a.calls(); !slices.Equal(got, wantNew) {
				t.Fatalf("%s (%v): OnNew called for %v, want %v", what, time.Since(start), got, wantNew)
			}
		}
		// step lets one more interval pass, which makes one more listing.
		step := func(what string, wantNew ...string) {
			t.Helper()
			time.Sleep(interval)
			listings++
			check(what, wantNew...)
		}

		time.Sleep(interval - time.Second)
		check("just before the first interval")
		time.Sleep(time.Second)
		listings++
		check("at the first interval, nothing new")

		src.set(nil, "ap-beijing", "ap-guangzhou", "ap-shanghai")
		step("a region appears", "ap-beijing")
		step("it is reported once", "ap-beijing")

		src.set(nil, "ap-beijing")
		step("regions vanish", "ap-beijing")
		src.set(nil, "ap-beijing", "ap-guangzhou", "ap-shanghai")
		step("vanished regions come back: still known", "ap-beijing")

		src.set(errors.New("RequestLimitExceeded"))
		step("the listing fails", "ap-beijing")
		if !strings.Contains(logs.String(), "listing failed; keeping the known regions") {
			t.Fatalf("the failed listing was not logged: %s", logs)
		}
		src.set(nil, "ap-beijing", "ap-guangzhou", "ap-hongkong", "ap-shanghai")
		step("after a failed listing only the new region is new", "ap-beijing", "ap-hongkong")

		a.setFail("ap-seoul", true)
		src.set(nil, "ap-beijing", "ap-guangzhou", "ap-hongkong", "ap-seoul", "ap-shanghai")
		step("OnNew fails", "ap-beijing", "ap-hongkong", "ap-seoul")
		step("so it is tried again", "ap-beijing", "ap-hongkong", "ap-seoul", "ap-seoul")
		a.setFail("ap-seoul", false)
		step("and succeeds", "ap-beijing", "ap-hongkong", "ap-seoul", "ap-seoul", "ap-seoul")
		step("then it is known", "ap-beijing", "ap-hongkong", "ap-seoul", "ap-seoul", "ap-seoul")

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	})
}

// TestRegionWatcherNeedsItsFields: Run refuses at once, rather than
// running without listing.
func TestRegionWatcherNeedsItsFields(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, string) error { return nil }
	for _, w := range []*cvm.RegionWatcher{
		{Interval: time.Hour, OnNew: noop},
		{Lister: &fakeRegions{}, OnNew: noop},
		{Lister: &fakeRegions{}, Interval: time.Hour},
	} {
		if err := w.Run(t.Context()); err == nil {
			t.Errorf("Run of %+v = nil, want an error", w)
		}
	}
}
