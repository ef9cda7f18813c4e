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
	defer w.endRelay(ctx, t.Target)
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
// were published and acknowledged. Calls for one target must not overlap.
//
// Two steps overlap with publishing. While the broker acknowledges a batch,
// RelayOnce reads the next one, which the next call publishes if the
// outbox still continues with it. And when that next batch is waiting, the
// delete of the acknowledged prefix runs while the next call publishes it
// (which waits for the delete before it returns, and reports its error).
// Otherwise the prefix is deleted before RelayOnce returns: when the outbox
// is drained, or after a failure, nothing is left in progress.
func (w *Watcher) RelayOnce(ctx context.Context, tg Target) (n int, err error) {
	rs := w.relayState(tg)
	entries, err := w.relayHead(ctx, tg, rs)
	if err != nil || len(entries) == 0 {
		if aerr := w.settleAck(ctx, tg, rs); err == nil {
			err = aerr
		}
		return 0, err
	}
	start := w.cfg.Now()
	defer func() { w.cfg.Observer.Relayed(tg, n, w.cfg.Now().Sub(start), err) }()
	ahead := make(chan []OutboxEntry, 1)
	go func() {
		next, err := w.cfg.Store.Outbox(ctx, tg, entries[len(entries)-1].Seq, w.cfg.RelayWindow)
		if err != nil {
			next = nil // the next call reads again, and reports it
		}
		ahead <- next
	}()
	// Copied into the slice of the previous batch: a drain allocates it
	// once, and the next call drops it unless it starts another batch.
	events := rs.events[:0]
	if cap(events) < len(entries) {
		events = make([]Event, 0, len(entries))
	}
	for _, e := range entries {
		events = append(events, e.Event)
	}
	rs.events = nil
	acked, pubErr := w.cfg.Publisher.Publish(ctx, events)
	next := <-ahead
	if acked > 0 {
		w.crash(CrashAfterPublish)
	}
	// The previous call's delete ran while this batch was published.
	if err := w.settleAck(ctx, tg, rs); err != nil {
		return 0, err
	}
	if acked == 0 {
		w.observeTarget(ctx, tg)
		return 0, pubErr
	}
	if acked > 1 && w.cfg.Crash != nil {
		if err := w.cfg.Store.Acknowledge(ctx, tg, entries[acked/2-1].Seq); err != nil {
			return 0, err
		}
		w.crash(CrashMidAck)
	}
	upTo := entries[acked-1].Seq
	if pubErr != nil || acked < len(entries) || len(next) == 0 {
		if err := w.cfg.Store.Acknowledge(ctx, tg, upTo); err != nil {
			return 0, err
		}
		w.observeTarget(ctx, tg)
		return acked, pubErr
	}
	w.startAck(ctx, tg, rs, upTo)
	rs.ahead, rs.events = next, events
	return acked, nil
}

// relayState is what RelayOnce carries from one call to the next for a
// target. Only the target's RelayOnce uses it, one call at a time.
type relayState struct {
	ahead  []OutboxEntry // the next batch, read ahead
	events []Event       // the last batch's events, whose storage the next one reuses
	// acking, when not nil, delivers the result of the delete of the
	// outbox entries with Seq <= ackedUpTo, all published, in progress.
	acking    chan error
	ackedUpTo uint64
}

// relayState returns tg's relay state, made on first use.
func (w *Watcher) relayState(tg Target) *relayState {
	w.relayMu.Lock()
	defer w.relayMu.Unlock()
	if w.relays == nil {
		w.relays = make(map[Target]*relayState)
	}
	rs := w.relays[tg]
	if rs == nil {
		rs = &relayState{}
		w.relays[tg] = rs
	}
	return rs
}

// relayHead returns up to RelayWindow entries of tg's outbox after those
// being deleted: the batch read ahead by the previous call when the outbox
// still continues with it (entries are never changed, and only deleted from
// the head), else a fresh read.
func (w *Watcher) relayHead(ctx context.Context, tg Target, rs *relayState) ([]OutboxEntry, error) {
	next := rs.ahead
	rs.ahead = nil
	if len(next) > 0 {
		head, err := w.cfg.Store.Outbox(ctx, tg, rs.ackedUpTo, 1)
		if err != nil {
			return nil, err
		}
		if len(head) == 1 && head[0].Seq == next[0].Seq {
			return next, nil
		}
	}
	return w.cfg.Store.Outbox(ctx, tg, rs.ackedUpTo, w.cfg.RelayWindow)
}

// startAck deletes tg's outbox entries with Seq <= upTo in the background;
// settleAck waits for it. The delete is not canceled with ctx: its entries
// are published, and a shutdown waits for it (endRelay).
func (w *Watcher) startAck(ctx context.Context, tg Target, rs *relayState, upTo uint64) {
	done := make(chan error, 1)
	rs.acking, rs.ackedUpTo = done, upTo
	ctx = context.WithoutCancel(ctx)
	go func() { done <- w.cfg.Store.Acknowledge(ctx, tg, upTo) }()
}

// settleAck waits for tg's delete in progress, if any, and returns its
// error. After an error the next read starts again from the head of the
// outbox (its entries are published again: duplicates the stream drops).
func (w *Watcher) settleAck(ctx context.Context, tg Target, rs *relayState) error {
	if rs.acking == nil {
		return nil
	}
	err := <-rs.acking
	rs.acking, rs.ackedUpTo = nil, 0
	if err != nil {
		rs.ahead = nil
	}
	w.observeTarget(ctx, tg)
	return err
}

// endRelay waits for tg's delete in progress and forgets its relay state.
func (w *Watcher) endRelay(ctx context.Context, tg Target) {
	w.relayMu.Lock()
	rs := w.relays[tg]
	delete(w.relays, tg)
	w.relayMu.Unlock()
	if rs != nil {
		_ = w.settleAck(ctx, tg, rs) // its error leaves the entries to the next relay
	}
}

// observeTarget reports tg's outbox depth and age, when tg is watched.
func (w *Watcher) observeTarget(ctx context.Context, tg Target) {
	for _, t := range w.list() {
		if t.Target == tg {
			w.observeOutbox(context.WithoutCancel(ctx), t)
		}
	}
}
