package cvm

import (
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
