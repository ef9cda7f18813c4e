package watcher_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestJitterSpreadsFirstScans runs the loop on synctest's fake clock, where
// time.Sleep advances the clock to each timer in turn: it observes when
// each target's first scan starts, exactly, without waiting in real time.
// The delays come from math/rand, so the test checks what holds for every
// draw: each first scan starts within [0, Jitter*Interval), and no two
// targets start together (two equal draws at nanosecond resolution over
// half an hour have a chance of about 1e-11).
func TestJitterSpreadsFirstScans(t *testing.T) {
	const (
		n        = 8
		interval = time.Hour
	)
	for _, tt := range []struct {
		name   string
		jitter float64
	}{
		{name: "jitter spreads first scans over the window", jitter: 0.5},
		{name: "no jitter fires every target at once", jitter: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGate(false)
				start := time.Now()
				targets, stop := runGated(t, g, n, watcher.Config{Interval: interval, Jitter: tt.jitter})
				defer stop()

				// Up to just before the second scans could start.
				window := time.Duration(tt.jitter * float64(interval))
				time.Sleep(interval - time.Nanosecond)
				synctest.Wait()

				starts := g.starts()
				seen := map[time.Duration]watcher.Target{}
				for _, tg := range targets {
					if got := len(starts[tg]); got != 1 {
						t.Fatalf("target %s scanned %d times in its first interval, want once", tg, got)
					}
					delay := starts[tg][0].Sub(start)
					if tt.jitter == 0 {
						if delay != 0 {
							t.Errorf("target %s first scanned after %v without jitter, want at once", tg, delay)
						}
						continue
					}
					if delay < 0 || delay >= window {
						t.Errorf("target %s first scanned after %v, want within [0, %v)", tg, delay, window)
					}
					if other, ok := seen[delay]; ok {
						t.Errorf("targets %s and %s both first scanned after %v: not spread", other, tg, delay)
					}
					seen[delay] = tg
				}
			})
		})
	}
}
