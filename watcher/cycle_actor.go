package watcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of the actor lookup (Config.ActorWait, ActorHorizon, ActorPoll).
const (
	DefaultActorWait    = 30 * time.Second
	DefaultActorHorizon = 15 * time.Minute
	DefaultActorPoll    = 10 * time.Second
)

// CrashAfterLookup is the crash point between a follow-up's lookup and the
// commit that appends it: a crash there must neither lose nor duplicate it.
const CrashAfterLookup = "after-lookup"

// actorRetryFirst and actorRetryMax bound the wait between two lookups of
// records not visible yet, while a commit waits for them.
const (
	actorRetryFirst = 500 * time.Millisecond
	actorRetryMax   = 5 * time.Second
)

// lookUpActors finds, before the commit, the actor of every new operation
// c's events carry, until deadline: a record not visible yet is asked
// again with backoff. Events whose actor is found carry it; the others go
// out without it and c.Pending records them for a follow-up. Several
// events of one request (one StopInstances on many instances) share one
// lookup. It never fails the cycle: an error leaves the actor to the
// follow-up (an auth error is said once, and in the status).
func (w *Watcher) lookUpActors(ctx context.Context, t *target, c *Commit, deadline time.Time) {
	if t.attributor == nil {
		return
	}
	var rids []string
	for _, e := range c.Events {
		if e.Operation != nil && e.Operation.RequestID != "" && !slices.Contains(rids, e.Operation.RequestID) {
			rids = append(rids, e.Operation.RequestID)
		}
	}
	if len(rids) == 0 {
		return
	}
	found := make(map[string]Actor, len(rids))
	around := c.Events[0].ObservedAt
	if w.cfg.Now().Before(deadline) {
		actx, cancel := context.WithDeadline(ctx, deadline)
		var lastErr error
	rounds:
		for attempt := 1; ; attempt++ {
			lastErr = nil
			for _, rid := range rids {
				if _, ok := found[rid]; ok {
					continue
				}
				a, ok, err := t.attributor.Actor(actx, rid, around)
				switch {
				case err != nil && actx.Err() != nil:
					break rounds // out of time: not an error of the lookup
				case err != nil:
					lastErr = err
					if errors.Is(err, ErrAuth) {
						break rounds
					}
				case ok:
					found[rid] = a.Bound()
				}
			}
			if len(found) == len(rids) || Sleep(actx, Backoff(attempt, actorRetryFirst, actorRetryMax)) != nil {
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return // the cycle is abandoned anyway
		}
		w.actorOutcome(t, lastErr)
	}
	for i := range c.Events {
		e := &c.Events[i]
		if e.Operation == nil || e.Operation.RequestID == "" {
			continue
		}
		if a, ok := found[e.Operation.RequestID]; ok {
			e.Actor = &a
			continue
		}
		c.Pending = append(c.Pending, PendingAttribution{
			EventID: e.ID, InstanceID: e.InstanceID, Operation: *e.Operation,
			ObservedAt: e.ObservedAt, Deadline: e.ObservedAt.Add(w.cfg.ActorHorizon),
		})
	}
	if len(c.Pending) > 0 {
		t.log.Info("actors not found before the commit: follow-ups will name them when CloudAudit has them",
			"events", len(c.Pending), "horizon", w.cfg.ActorHorizon)
	}
}

// actorOutcome records in the target's status, and logs, what a lookup
// says about attribution's health: an auth error is said once (until a
// lookup works again), another error each time.
func (w *Watcher) actorOutcome(t *target, err error) {
	t.mu.Lock()
	wasAuth := t.status.ActorError != "" && t.actorAuth
	switch {
	case err == nil:
		t.status.ActorError, t.actorAuth = "", false
	case errors.Is(err, ErrAuth):
		t.status.ActorError, t.actorAuth = fmt.Sprintf("attribution degraded (events go out without data.operation.actor): %v", err), true
	default:
		t.status.ActorError, t.actorAuth = fmt.Sprintf("actor lookup failed: %v", err), false
	}
	t.mu.Unlock()
	switch {
	case err == nil && wasAuth:
		t.log.Info("actor lookup works again")
	case err == nil, errors.Is(err, ErrAuth) && wasAuth:
	case errors.Is(err, ErrAuth):
		t.log.Error("actor lookup not permitted: events go out without data.operation.actor until "+
			"cloudaudit:LookUpEvents is allowed; the watcher itself is not affected", "err", err)
	default:
		t.log.Warn("actor lookup failed: the actor is left to a follow-up", "err", err)
	}
}

// attributionLoop looks up the target's pending attributions every
// Config.ActorPoll, the first time right away, until ctx is done.
func (w *Watcher) attributionLoop(ctx context.Context, t *target) {
	for {
		if _, err := w.AttributeOnce(ctx, t.Target); err != nil && ctx.Err() == nil {
			t.log.Warn("pending attributions not looked up", "err", err)
		}
		if Sleep(ctx, w.cfg.ActorPoll) != nil {
			return
		}
	}
}

// AttributeOnce looks up every pending attribution of a target once. Those
// found become follow-ups (TypeAttributed), appended to the outbox in the
// store transaction that removes them from the pending ones; those past
// their deadline are removed without a follow-up; the rest wait for the
// next round. It returns how many follow-ups it appended. An auth error
// ends the round (said once; the attributions stay pending until their
// deadline).
func (w *Watcher) AttributeOnce(ctx context.Context, tg Target) (int, error) {
	t := w.find(tg)
	if t == nil {
		return 0, fmt.Errorf("watcher: unknown target %s", tg)
	}
	if t.attributor == nil {
		return 0, nil
	}
	pending, err := w.cfg.Store.PendingAttributions(ctx, tg)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	var (
		follow  []Event
		expired []string
		lastErr error
		asked   bool
	)
	found := map[string]Actor{} // by request id: one lookup per request
	for _, p := range pending {
		now := w.cfg.Now()
		if now.After(p.Deadline) {
			expired = append(expired, p.EventID)
			continue
		}
		rid := p.Operation.RequestID
		a, ok := found[rid]
		if !ok {
			var err error
			a, ok, err = t.attributor.Actor(ctx, rid, p.ObservedAt)
			asked = true
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				lastErr = err
				if errors.Is(err, ErrAuth) {
					break
				}
				continue
			}
			if ok {
				found[rid] = a
			}
		}
		if ok {
			follow = append(follow, Attributed(tg, p, a, now))
		}
	}
	if asked {
		w.actorOutcome(t, lastErr)
	}
	if len(follow) == 0 && len(expired) == 0 {
		return 0, nil
	}
	w.crash(CrashAfterLookup)
	n, err := w.cfg.Store.ResolveAttributions(ctx, tg, follow, expired)
	if err != nil {
		return 0, fmt.Errorf("resolve attributions of %s: %w", tg, err)
	}
	if len(expired) > 0 {
		t.log.Info("no actor found within the horizon: no follow-up for these events", "events", len(expired))
	}
	if n > 0 {
		select {
		case t.wake <- struct{}{}:
		default:
		}
		w.observeOutbox(ctx, t)
	}
	return n, nil
}
