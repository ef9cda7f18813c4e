package watcher

import (
	"context"
	"time"
)

// relayFirstBackoff is the wait (before jitter) after a first failed relay
// attempt; it doubles with each further failure up to RelayMaxBackoff.
const relayFirstBackoff = 100 * time.Millisecond

// relayLoop publishes the target's outbox in commit order until ctx is done.
// An entry leaves the outbox only once it and every entry before it are
// acknowledged. While the broker is down it retries with capped, jittered
// backoff; scanning is not affected and the outbox grows. When scanning has
// stopped (scanCtx done) it returns as soon as the outbox is empty.
func (w *Watcher) relayLoop(ctx, scanCtx context.Context, t *target) {
	failures := 0
	for ctx.Err() == nil {
		n, err := w.RelayOnce(ctx, t.Target)
		switch {
		case err != nil:
			failures++
			if ctx.Err() == nil {
				t.log.Warn("relay: publish failed, will retry", "published", n, "attempt", failures, "err", err)
			}
			if Sleep(ctx, Backoff(failures, relayFirstBackoff, w.cfg.RelayMaxBackoff)) != nil {
				return
			}
		case n > 0:
			failures = 0 // more may be waiting: go again at once
		default:
			failures = 0
			if scanCtx.Err() != nil {
				return // drained after shutdown
			}
			select {
			case <-ctx.Done():
				return
			case <-scanCtx.Done():
			case <-t.wake:
			case <-time.After(t.interval):
			}
		}
	}
}

// RelayOnce publishes up to RelayWindow entries from the head of a target's
// outbox and deletes the acknowledged prefix. It returns how many entries
// were published and acknowledged.
func (w *Watcher) RelayOnce(ctx context.Context, tg Target) (n int, err error) {
	entries, err := w.cfg.Store.Outbox(ctx, tg, 0, w.cfg.RelayWindow)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	start := w.cfg.Now()
	defer func() {
		w.cfg.Observer.Relayed(tg, n, w.cfg.Now().Sub(start), err)
		for _, t := range w.list() {
			if t.Target == tg {
				w.observeOutbox(context.WithoutCancel(ctx), t)
			}
		}
	}()
	events := make([]Event, len(entries))
	for i, e := range entries {
		events[i] = e.Event
	}
	acked, pubErr := w.cfg.Publisher.Publish(ctx, events)
	if acked > 0 {
		w.crash(CrashAfterPublish)
	}
	if acked > 1 && w.cfg.Crash != nil {
		if err := w.cfg.Store.Acknowledge(ctx, tg, entries[acked/2-1].Seq); err != nil {
			return 0, err
		}
		w.crash(CrashMidAck)
	}
	if acked > 0 {
		if err := w.cfg.Store.Acknowledge(ctx, tg, entries[acked-1].Seq); err != nil {
			return 0, err
		}
	}
	return acked, pubErr
}
