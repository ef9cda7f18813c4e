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
	defer w.dropAhead(t.Target)
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
//
// While the broker acknowledges a batch, it reads the next one, which the
// next call publishes if the outbox still starts where that batch does.
func (w *Watcher) RelayOnce(ctx context.Context, tg Target) (n int, err error) {
	entries, err := w.relayHead(ctx, tg)
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
	ahead := make(chan []OutboxEntry, 1)
	go func() {
		next, err := w.cfg.Store.Outbox(ctx, tg, entries[len(entries)-1].Seq, w.cfg.RelayWindow)
		if err != nil {
			next = nil // the next call reads again, and reports it
		}
		ahead <- next
	}()
	defer func() {
		if next := <-ahead; err == nil && n == len(entries) && len(next) > 0 {
			w.setAhead(tg, next)
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

// relayHead returns up to RelayWindow entries from the head of tg's outbox:
// the batch read ahead by the previous call when the outbox still starts
// with it (entries are never changed, and only deleted from the head), else
// a fresh read.
func (w *Watcher) relayHead(ctx context.Context, tg Target) ([]OutboxEntry, error) {
	w.aheadMu.Lock()
	next := w.ahead[tg]
	delete(w.ahead, tg)
	w.aheadMu.Unlock()
	if len(next) > 0 {
		head, err := w.cfg.Store.Outbox(ctx, tg, 0, 1)
		if err != nil {
			return nil, err
		}
		if len(head) == 1 && head[0].Seq == next[0].Seq {
			return next, nil
		}
	}
	return w.cfg.Store.Outbox(ctx, tg, 0, w.cfg.RelayWindow)
}

// setAhead keeps next, read ahead, for tg's next RelayOnce.
func (w *Watcher) setAhead(tg Target, next []OutboxEntry) {
	w.aheadMu.Lock()
	defer w.aheadMu.Unlock()
	if w.ahead == nil {
		w.ahead = make(map[Target][]OutboxEntry)
	}
	w.ahead[tg] = next
}

// dropAhead forgets what was read ahead for tg.
func (w *Watcher) dropAhead(tg Target) {
	w.aheadMu.Lock()
	defer w.aheadMu.Unlock()
	delete(w.ahead, tg)
}
