package cvm_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// spend runs workers that wait on l and count the requests let through,
// until ctx is done.
func spend(ctx context.Context, wg *sync.WaitGroup, l *cvm.Limiter, workers int, n *atomic.Int64) {
	for range workers {
		wg.Go(func() {
			for l.Wait(ctx) == nil {
				n.Add(1)
			}
		})
	}
}

// On synctest's clock, ten seconds of a 40 req/s quota shared by a busy
// scan (8 workers) and a busy hot set (a 25% share, 4 workers): the hot set
// gets its share and no more, the scan the rest, and the two together stay
// within the quota. With the hot set idle the scan has the whole quota.
func TestLimiterShareReservesItsPartAndNoMore(t *testing.T) {
	for _, tt := range []struct {
		name             string
		hotWorkers       int
		scanMin, scanMax int64
		hotMin, hotMax   int64
	}{
		{name: "busy hot set keeps to its share", hotWorkers: 4, scanMin: 295, scanMax: 305, hotMin: 95, hotMax: 102},
		{name: "idle hot set leaves the scan the whole quota", hotWorkers: 0, scanMin: 398, scanMax: 402},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				quota := cvm.NewLimiter(40, 1)
				hot := quota.Share(0.25)
				if got, want := hot.Rate(), 10.0; got != want {
					t.Fatalf("share rate = %v, want %v", got, want)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				var wg sync.WaitGroup
				var scans, hots atomic.Int64
				spend(ctx, &wg, quota, 8, &scans)
				spend(ctx, &wg, hot, tt.hotWorkers, &hots)
				wg.Wait()
				s, h := scans.Load(), hots.Load()
				t.Logf("scan %d, hot %d requests in 10s", s, h)
				if s < tt.scanMin || s > tt.scanMax {
					t.Errorf("scan requests = %d, want in [%d, %d]", s, tt.scanMin, tt.scanMax)
				}
				if h < tt.hotMin || h > tt.hotMax {
					t.Errorf("hot requests = %d, want in [%d, %d]", h, tt.hotMin, tt.hotMax)
				}
				if s+h > 402 {
					t.Errorf("scan+hot = %d requests in 10s, over the 40 req/s quota", s+h)
				}
			})
		})
	}
}

// A throttle answered to a hot lookup slows the whole quota, and the share
// with it; successes bring both back.
func TestLimiterShareFollowsTheQuotasRate(t *testing.T) {
	ls := cvm.NewLimiters(40, 1)
	hot := ls.Share("k", 0.25)
	if ls.Share("k", 0.5) != hot {
		t.Fatal("Share of one key returned two shares")
	}
	hot.Throttled()
	if got, want := ls.Get("k").Rate(), 20.0; got != want {
		t.Fatalf("quota rate after a hot throttle = %v, want %v", got, want)
	}
	if got, want := hot.Rate(), 5.0; got != want {
		t.Fatalf("share rate after a hot throttle = %v, want %v", got, want)
	}
	for range 100 {
		hot.Succeeded()
	}
	if got, want := hot.Rate(), 10.0; got != want {
		t.Fatalf("share rate after successes = %v, want %v", got, want)
	}
}
