package watcher

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultEnrichTimeout bounds the enrichment of one cycle's events,
// retries included; DefaultEnrichRefresh is how often every instance's
// enrichment is refreshed.
const (
	DefaultEnrichTimeout = 10 * time.Second
	DefaultEnrichRefresh = time.Hour
)

// enrich fetches, between the diff and the commit, the enrichment of the
// instances c's transitions are about (operation events carry theirs), and adds it to the events (data.instance,
// and data.operation when Attribute says so) and to c.Enrich, so the
// commit stores both with the events. It never fails the cycle and never
// holds it longer than Config.EnrichTimeout: whatever is not described by
// then goes out without data.instance. With an Attributor it then looks up
// the actors (see lookUpActors) for at most actorWait after enrichment
// began (Config.ActorWait for a scan; one hot interval for a hot round,
// whose point is speed: an actor found later comes as a follow-up), holding
// the commit at most max(EnrichTimeout, actorWait) in all. A disappearance
// carries the instance's last known values. The caller holds t.enrichMu until the
// commit is done, so a refresh cannot interleave.
func (w *Watcher) enrich(ctx context.Context, t *target, c *Commit, actorWait time.Duration) {
	if t.enricher == nil || len(c.Events) == 0 {
		return
	}
	begun := w.cfg.Now()
	if !w.enrichTransitions(ctx, t, c) {
		return // the cycle is abandoned anyway
	}
	// The actors of new operations (operation events' too, see described),
	// until actorWait after enrichment began: with DescribeInstances' time
	// included, the commit is held at most max(EnrichTimeout, actorWait).
	w.lookUpActors(ctx, t, c, begun.Add(actorWait))
}

// enrichTransitions is enrich's first half for c's transitions (operation
// events carry their enrichment already): it describes them, sets
// data.instance and data.operation and adds the fresh enrichments to
// c.Enrich. It returns false when ctx is done.
func (w *Watcher) enrichTransitions(ctx context.Context, t *target, c *Commit) bool {
	var all, live []string
	for _, e := range c.Events {
		if e.IsOperation() {
			continue
		}
		all = append(all, e.InstanceID)
		if e.To != Absent {
			live = append(live, e.InstanceID)
		}
	}
	if len(all) == 0 {
		return true
	}
	prev, err := w.cfg.Store.Enrichments(ctx, t.Target, all)
	if err != nil {
		// Without the previous enrichments no operation can be judged new:
		// publish without enrichment rather than guess.
		t.log.Warn("enrichment: previous values not readable; events go out without enrichment", "err", err)
		w.cfg.Observer.Enriched(t.Target, EnrichEvents, len(live), 0, 0, err)
		return ctx.Err() == nil
	}
	fresh := map[string]Enrichment{}
	if len(live) > 0 {
		started := w.cfg.Now()
		dctx, cancel := context.WithTimeout(ctx, w.cfg.EnrichTimeout)
		got, err := t.enricher.Describe(dctx, live)
		cancel()
		took := w.cfg.Now().Sub(started)
		if ctx.Err() != nil {
			return false
		}
		for _, en := range got {
			en.FetchedAt = started
			fresh[en.InstanceID] = en.Bound()
		}
		w.cfg.Observer.Enriched(t.Target, EnrichEvents, len(live), len(fresh), took, err)
		w.enrichOutcome(t, err, len(live)-len(fresh), took)
	}
	for i := range c.Events {
		e := &c.Events[i]
		if e.IsOperation() {
			continue
		}
		p, hadPrev := prev[e.InstanceID]
		if e.To == Absent {
			if hadPrev {
				in := p.Instance
				e.Instance = &in
			}
			continue
		}
		en, ok := fresh[e.InstanceID]
		if !ok {
			continue
		}
		in := en.Instance
		e.Instance = &in
		e.Operation = Attribute(en, p, hadPrev, e.To)
		c.Enrich = append(c.Enrich, en)
	}
	return true
}

// Kinds of enrichment Observer.Enriched reports.
const (
	EnrichEvents  = "events"  // a cycle's events, before the commit
	EnrichRefresh = "refresh" // a page of the background refresh
)

// enrichOutcome logs and records in the target's status what an
// enrichment attempt says about enrichment's health: an auth error is
// said once (until enrichment works again), a timeout or other failure
// each time.
func (w *Watcher) enrichOutcome(t *target, err error, missing int, took time.Duration) {
	t.mu.Lock()
	wasAuth := t.status.EnrichError != "" && t.enrichAuth
	switch {
	case err == nil:
		t.status.EnrichError, t.enrichAuth = "", false
	case errors.Is(err, ErrAuth):
		t.status.EnrichError, t.enrichAuth = fmt.Sprintf("enrichment degraded (events go out without data.instance): %v", err), true
	default:
		t.status.EnrichError, t.enrichAuth = fmt.Sprintf("enrichment incomplete: %v", err), false
	}
	t.mu.Unlock()
	switch {
	case err == nil && wasAuth:
		t.log.Info("enrichment works again")
	case err == nil:
	case errors.Is(err, ErrAuth) && wasAuth:
	case errors.Is(err, ErrAuth):
		t.log.Error("enrichment not permitted: events go out without data.instance until DescribeInstances is allowed; "+
			"the watcher itself is not affected", "err", err)
	default:
		t.log.Warn("enrichment incomplete: the events not described go out without data.instance",
			"missing", missing, "took", took.Round(time.Millisecond), "err", err)
	}
}

// refreshLoop refreshes the enrichment of every instance of the target
// every Config.EnrichRefresh, the first time right away, until ctx is done.
func (w *Watcher) refreshLoop(ctx context.Context, t *target) {
	for {
		if err := w.RefreshOnce(ctx, t.Target); err != nil && ctx.Err() == nil {
			t.log.Warn("enrichment refresh incomplete", "err", err)
		}
		if Sleep(ctx, w.cfg.EnrichRefresh) != nil {
			return
		}
	}
}

// RefreshOnce pages through every instance of a target with its Enricher
// and stores the fresh enrichment of each page as Reconcile decides: an
// operation the scans may not have seen yet is held, not recorded early,
// and a new operation that left no visible state change is committed as an
// operation event (TypeOperation) with the enrichment that shows it, in
// one commit; its actor, when an Attributor is set, is left to a
// follow-up (a refresh never waits for CloudAudit). An instance enriched
// by a commit after the page was fetched keeps that newer enrichment.
// Pages whose values did not change are not written.
func (w *Watcher) RefreshOnce(ctx context.Context, tg Target) error {
	t := w.find(tg)
	if t == nil {
		return fmt.Errorf("watcher: unknown target %s", tg)
	}
	if t.enricher == nil {
		return nil
	}
	// The snapshot says which state the scans know; without it every new
	// operation would be held.
	if err := w.loadSnapshot(ctx, t); err != nil {
		return err
	}
	started := w.cfg.Now()
	err := t.enricher.List(ctx, func(page []Enrichment) error {
		arrived := w.cfg.Now()
		fresh := make([]Enrichment, len(page))
		ids := make([]string, len(page))
		for i, en := range page {
			if en.FetchedAt.IsZero() {
				en.FetchedAt = started
			}
			fresh[i], ids[i] = en.Bound(), en.InstanceID
		}
		t.commitMu.Lock()
		defer t.commitMu.Unlock()
		t.enrichMu.Lock()
		defer t.enrichMu.Unlock()
		prev, err := w.cfg.Store.Enrichments(ctx, tg, ids)
		if err != nil {
			return err
		}
		var c Commit
		t.reconcile(&c, fresh, prev, arrived)
		w.cfg.Observer.Enriched(tg, EnrichRefresh, len(page), len(page), 0, nil)
		switch {
		case len(c.Events) > 0:
			return w.commitOperations(ctx, t, c)
		case len(c.Enrich) > 0:
			return w.cfg.Store.PutEnrichments(ctx, tg, c.Enrich)
		}
		return nil
	})
	if err != nil {
		w.cfg.Observer.Enriched(tg, EnrichRefresh, 0, 0, w.cfg.Now().Sub(started), err)
		if errors.Is(err, ErrAuth) {
			w.enrichOutcome(t, err, 0, 0)
		}
	}
	return err
}
