package watcher_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestBackoffDoublesWithEqualJitterUpToTheCap checks every draw against the
// bounds of equal jitter, [d/2, d] for the capped exponential d, and that
// the draws do spread over that range: each half of it is hit (a draw lands
// in the upper or the lower quarter-width with probability 1/2 each, so 200
// draws missing one of them has a chance of 2^-199).
func TestBackoffDoublesWithEqualJitterUpToTheCap(t *testing.T) {
	const draws = 200
	for _, tt := range []struct {
		name          string
		n             int
		base, ceiling time.Duration
		want          time.Duration // d, before jitter
	}{
		{"first retry waits base", 1, 100 * time.Millisecond, 30 * time.Second, 100 * time.Millisecond},
		{"n below 1 counts as 1", 0, 100 * time.Millisecond, 30 * time.Second, 100 * time.Millisecond},
		{"negative n counts as 1", -5, 100 * time.Millisecond, 30 * time.Second, 100 * time.Millisecond},
		{"second retry doubles", 2, 100 * time.Millisecond, 30 * time.Second, 200 * time.Millisecond},
		{"ninth retry doubled eight times", 9, 100 * time.Millisecond, 30 * time.Second, 25600 * time.Millisecond},
		{"tenth retry reaches the cap", 10, 100 * time.Millisecond, 30 * time.Second, 30 * time.Second},
		{"later retries stay at the cap", 1000, 100 * time.Millisecond, 30 * time.Second, 30 * time.Second},
		{"a ceiling below base caps the first", 1, time.Second, 300 * time.Millisecond, 300 * time.Millisecond},
		{"no overflow near the largest duration", 200, time.Second, math.MaxInt64, math.MaxInt64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.want/2, tt.want
			var low, high bool
			for range draws {
				d := watcher.Backoff(tt.n, tt.base, tt.ceiling)
				if d < lo || d > hi {
					t.Fatalf("Backoff(%d, %v, %v) = %v, want within [%v, %v]", tt.n, tt.base, tt.ceiling, d, lo, hi)
				}
				low = low || d < lo+(hi-lo)/2
				high = high || d >= lo+(hi-lo)/2
			}
			if !low || !high {
				t.Fatalf("Backoff(%d, %v, %v): %d draws all in one half of [%v, %v] (lower half hit: %v)", tt.n, tt.base, tt.ceiling, draws, lo, hi, low)
			}
		})
	}
}

func TestBackoffWithoutPositiveBoundsIsZero(t *testing.T) {
	for _, tt := range []struct{ base, ceiling time.Duration }{{0, time.Second}, {-time.Second, time.Second}, {time.Second, 0}, {time.Second, -1}} {
		if got := watcher.Backoff(3, tt.base, tt.ceiling); got != 0 {
			t.Fatalf("Backoff(3, %v, %v) = %v, want 0", tt.base, tt.ceiling, got)
		}
	}
}

// TestSleep runs on synctest's fake clock: the waits are exact and take no
// real time.
func TestSleep(t *testing.T) {
	t.Run("waits the whole duration", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if err := watcher.Sleep(t.Context(), time.Hour); err != nil {
				t.Fatalf("Sleep = %v, want nil", err)
			}
			if got, want := time.Since(start), time.Hour; got != want {
				t.Fatalf("Sleep returned after %v, want %v", got, want)
			}
		})
	})
	t.Run("returns when the context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
			defer cancel()
			start := time.Now()
			if err := watcher.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Sleep = %v, want context.DeadlineExceeded", err)
			}
			if got, want := time.Since(start), 10*time.Minute; got != want {
				t.Fatalf("Sleep returned after %v, want %v (when ctx ended)", got, want)
			}
		})
	})
	t.Run("an ended context wins even over no wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for range 100 {
			if err := watcher.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
				t.Fatalf("Sleep(canceled, 0) = %v, want context.Canceled", err)
			}
		}
	})
}
