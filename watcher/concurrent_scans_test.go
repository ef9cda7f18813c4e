package watcher_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// runGated starts a Watcher over n targets whose scans wait at g, in a
// synctest bubble; stop cancels it and waits for Run to return.
func runGated(t *testing.T, g *gate, n int, cfg watcher.Config) (targets []watcher.Target, stop func()) {
	t.Helper()
	var sources []watcher.TargetSource
	for i := range n {
		tg := watcher.Target{Account: "acct", Region: fmt.Sprintf("region-%d", i)}
		targets = append(targets, tg)
		sources = append(sources, watcher.TargetSource{Target: tg, Source: g.source(tg)})
	}
	cfg.Store, cfg.Publisher, cfg.Logger = store.NewMemory(), mempub.New(), quiet
	w, err := watcher.New(cfg, sources)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return targets, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
}

// TestMaxConcurrentScansCapsScansAcrossTargets runs on synctest's fake
// clock: after synctest.Wait every goroutine of the watcher is blocked, so
// the number of scans held at the gate is exactly the number the loop let
// run at once, with no sleep and no race.
func TestMaxConcurrentScansCapsScansAcrossTargets(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cap, want int // want: scans in flight at first
	}{
		{name: "cap of 2 holds 5 targets to 2 at once", cap: 2, want: 2},
		{name: "cap of 1 serialises scans", cap: 1, want: 1},
		{name: "cap above the targets holds nothing back", cap: 9, want: 5},
		{name: "no cap runs every target at once", cap: 0, want: 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 5
				g := newGate(true)
				// An hour between scans: the fake clock never gets there,
				// so each target scans exactly once.
				targets, stop := runGated(t, g, n, watcher.Config{Interval: time.Hour, MaxConcurrentScans: tt.cap})
				defer stop()

				synctest.Wait()
				if in, _, _ := g.state(); in != tt.want {
					t.Fatalf("scans in flight at start = %d, want %d", in, tt.want)
				}
				for released := 1; released <= n; released++ {
					g.releaseOne()
					synctest.Wait()
					in, _, finished := g.state()
					if finished != released {
						t.Fatalf("after %d releases, %d scans finished", released, finished)
					}
					// A finished scan frees its slot for a waiting target.
					if want := min(tt.want, n-released); in != want {
						t.Fatalf("after %d of %d scans finished, %d in flight, want %d", released, n, in, want)
					}
				}
				if _, peak, _ := g.state(); peak != tt.want {
					t.Errorf("most scans in flight at once = %d, want %d", peak, tt.want)
				}
				starts := g.starts()
				for _, tg := range targets {
					if got := len(starts[tg]); got != 1 {
						t.Errorf("target %s scanned %d times, want once", tg, got)
					}
				}
			})
		})
	}
}
