package watcher

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff returns the wait before retry number n (1 for the first retry):
// base doubled n-1 times, capped at ceiling, with "equal jitter": the wait
// is drawn uniformly from [d/2, d], so that many callers retrying at once
// spread out without any wait being near zero. n below 1 counts as 1; a
// ceiling below base caps base too; with base or ceiling not positive the
// wait is 0. It is safe for concurrent use.
func Backoff(n int, base, ceiling time.Duration) time.Duration {
	d := min(base, ceiling)
	if d <= 0 {
		return 0
	}
	for i := 1; i < n && d < ceiling; i++ {
		if d > ceiling/2 {
			d = ceiling // doubling would pass the cap (or overflow)
		} else {
			d *= 2
		}
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d, or until ctx is done, whichever comes first. It
// returns nil once d has passed and ctx's error if ctx is done first,
// already done included (then it returns at once, even for d <= 0).
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
