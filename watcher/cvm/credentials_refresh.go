package cvm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Refresh timing of temporary credentials.
const (
	// refreshLead is the least time before expiry at which keys are
	// refreshed, unless that is more than half their lifetime.
	refreshLead = 5 * time.Minute
	// minRefreshWait keeps a server that issues absurdly short lifetimes
	// from driving a hot loop.
	minRefreshWait = time.Second
	// retryBase and retryMax bound the backoff between failed refreshes.
	retryBase = time.Second
	retryMax  = 30 * time.Second
)

// fetchFunc obtains a fresh set of temporary keys (id, key, token, expires).
// Its ctx carries the HTTP timeout. Its errors must not contain a secret.
type fetchFunc func(ctx context.Context) (keys, error)

// refreshingCredential holds temporary keys and replaces them before they
// expire. Readers load one immutable keys value, so id, key and token always
// belong together.
type refreshingCredential struct {
	source  string
	fetch   fetchFunc
	timeout time.Duration
	log     *slog.Logger
	base    Credential // the credential fetch signs with, closed with this one; may be nil

	cur       atomic.Pointer[keys]
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ Credential = (*refreshingCredential)(nil)

// startRefreshing fetches the first keys (an error names source) and starts
// the refresher, which runs until Close or until ctx ends.
func startRefreshing(ctx context.Context, source string, fetch fetchFunc, timeout time.Duration, log *slog.Logger, base Credential) (*refreshingCredential, error) {
	c := &refreshingCredential{
		source:  source,
		fetch:   fetch,
		timeout: timeout,
		log:     log.With(slog.String("credentials", source)),
		base:    base,
		done:    make(chan struct{}),
	}
	k, err := c.fetchOnce(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c.cur.Store(&k)
	c.log.Info("temporary credentials obtained", slog.Time("expires", k.expires), slog.Time("refreshAt", refreshAt(k)))
	rctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	go c.run(rctx)
	return c, nil
}

// fetchOnce makes one bounded fetch and checks what it got.
func (c *refreshingCredential) fetchOnce(ctx context.Context) (keys, error) {
	fctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	k, err := c.fetch(fctx)
	if err != nil {
		if ctx.Err() != nil {
			return keys{}, fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return keys{}, err
	}
	now := time.Now()
	if k.id == "" || k.key == "" || k.token == "" || k.expires.IsZero() {
		return keys{}, fmt.Errorf("%w: temporary credentials without id, key, token or expiry", ErrMalformed)
	}
	if !k.expires.After(now) {
		return keys{}, fmt.Errorf("temporary credentials expired on arrival (expiry %s, local time %s): is the local clock right?",
			k.expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	k.issued = now
	return k, nil
}

// refreshAt is when keys should be replaced: at 80% of their lifetime or 5
// minutes before expiry, whichever is earlier, but not before half their
// lifetime (nor within minRefreshWait of their arrival).
func refreshAt(k keys) time.Time {
	life := k.expires.Sub(k.issued)
	lead := min(max(life/5, refreshLead), life/2)
	at := k.expires.Add(-lead)
	if earliest := k.issued.Add(minRefreshWait); at.Before(earliest) {
		return earliest
	}
	return at
}

// retryDelay is the jittered backoff before retry number attempt (1, 2, ...)
// of a failed refresh: about 1s, 2s, 4s ... up to 30s.
func retryDelay(attempt int) time.Duration {
	return watcher.Backoff(attempt, retryBase, retryMax)
}

// run refreshes the keys until ctx ends. A failed refresh is retried with
// backoff; the old keys stay in use meanwhile, even once expired (requests
// then fail with an auth error, which is clearer than no keys at all).
func (c *refreshingCredential) run(ctx context.Context) {
	defer close(c.done)
	for {
		old := c.cur.Load()
		if !sleepUntil(ctx, refreshAt(*old)) {
			return
		}
		for attempt := 1; ; attempt++ {
			k, err := c.fetchOnce(ctx)
			if err == nil {
				c.cur.Store(&k)
				c.log.Info("temporary credentials refreshed", slog.Time("expires", k.expires),
					slog.Time("refreshAt", refreshAt(k)), slog.Int("attempts", attempt))
				break
			}
			if ctx.Err() != nil {
				return
			}
			delay := retryDelay(attempt)
			level, msg := slog.LevelWarn, "credential refresh failed; the current keys are still valid"
			if !time.Now().Before(old.expires) {
				level, msg = slog.LevelError, "credential refresh failed and the current keys have expired"
			}
			c.log.LogAttrs(ctx, level, msg, slog.String("error", err.Error()), slog.Int("attempt", attempt),
				slog.Time("expires", old.expires), slog.Duration("retryIn", delay))
			if !sleepUntil(ctx, time.Now().Add(delay)) {
				return
			}
		}
	}
}

// sleepUntil waits until t and reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *refreshingCredential) GetSecretId() string  { return c.cur.Load().id }
func (c *refreshingCredential) GetSecretKey() string { return c.cur.Load().key }
func (c *refreshingCredential) GetToken() string     { return c.cur.Load().token }

// GetCredential returns id, key and token of one set of keys.
func (c *refreshingCredential) GetCredential() (string, string, string) {
	k := c.cur.Load()
	return k.id, k.key, k.token
}

// Source says where the keys come from.
func (c *refreshingCredential) Source() string { return c.source }

// Close stops the refresher and closes the base credential.
func (c *refreshingCredential) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
		if c.base != nil {
			err = c.base.Close()
		}
	})
	return err
}

// String, GoString and LogValue keep the keys out of fmt and slog output.
func (c *refreshingCredential) String() string       { return c.source }
func (c *refreshingCredential) GoString() string     { return "cvm.Credential(" + c.source + ")" }
func (c *refreshingCredential) LogValue() slog.Value { return slog.StringValue(c.source) }
