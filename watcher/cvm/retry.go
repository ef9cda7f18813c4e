package cvm

import (
	"context"
	"fmt"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// RetryPolicy bounds the retries of one API request (one page, one lookup
// batch). Zero fields take the defaults below.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 means no retry.
	MaxAttempts int
	// BaseDelay is the first backoff; each later one doubles, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// defaultRetry retries a request for about half a minute at most.
var defaultRetry = RetryPolicy{MaxAttempts: 6, BaseDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = defaultRetry.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = defaultRetry.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = defaultRetry.MaxDelay
	}
	return p
}

// backoff is the wait before retry number n (1-based): exponential from
// BaseDelay up to MaxDelay, with equal jitter (see watcher.Backoff).
func (p RetryPolicy) backoff(n int) time.Duration {
	return watcher.Backoff(n, p.BaseDelay, p.MaxDelay)
}

// caller sends the requests of one API under its limiter with the retry
// policy: throttling, server, network and malformed answers are retried
// with backoff and slow the shared limiter (throttling more; see Limiter);
// auth and rejected requests are not retried.
type caller struct {
	limiter *Limiter
	retry   RetryPolicy
	obs     Observer
	account string
	action  string
}

// do calls send until it succeeds or may not be retried, counting requests
// in st. Each attempt first waits for the limiter.
func (c caller) do(ctx context.Context, st *callStats, send func() error) error {
	return c.run(ctx, st, send, false)
}

// doReserved is do for a caller that has already waited for the limiter
// once for this request: the first attempt is sent at once, every retry
// waits as in do.
func (c caller) doReserved(ctx context.Context, st *callStats, send func() error) error {
	return c.run(ctx, st, send, true)
}

func (c caller) run(ctx context.Context, st *callStats, send func() error, reserved bool) error {
	for attempt := 1; ; attempt++ {
		if attempt > 1 || !reserved {
			if err := c.limiter.Wait(ctx); err != nil {
				return fmt.Errorf("rate limiter: %w", err)
			}
		}
		st.requests.Add(1)
		sent := time.Now()
		err := send()
		if err == nil {
			c.obs.Request(c.account, c.action, "OK", time.Since(sent))
			c.limiter.Succeeded()
			return nil
		}
		err, cl := wrapError(ctx, c.action, err)
		c.obs.Request(c.account, c.action, codeOf(err, cl), time.Since(sent))
		switch cl {
		case classCanceled, classAuth, classReject:
			return err
		case classThrottle:
			st.throttles.Add(1)
			c.limiter.Throttled()
		case classRetry:
			c.limiter.Failed() // the API is unwell: ease off for every worker, not just this one
		}
		if attempt >= c.retry.MaxAttempts {
			return fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		st.retries.Add(1)
		if err := watcher.Sleep(ctx, c.retry.backoff(attempt)); err != nil {
			return fmt.Errorf("backoff: %w", err)
		}
	}
}
