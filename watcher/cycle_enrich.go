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
// instances c's events are about, and adds it to the events (data.instance,
// and data.operation when Attribute says so) and to c.Enrich, so the
// commit stores both with the events. It never fails the cycle and never
// holds it longer than Config.EnrichTimeout: whatever is not described by
// then goes out without data.instance. With an Attributor it then looks up
// the actors (see lookUpActors) for at most actorWait after enrichment
// began (Config.ActorWait for a scan; one hot interval for a hot round,
// whose point is speed: an actor found later comes as a follow-up), holding
// the commit at most max(EnrichTimeout, actorWait) in all. A disappearance
// carries the
// instance's last known values. The caller holds t.enrichMu until the
// commit is done, so a refresh cannot interleave.
func (w *Watcher) enrich(ctx context.Context, t *target, c *Commit, actorWait time.Duration) {
	if t.enricher == nil || len(c.Events) == 0 {
		return
	}
	begun := w.cfg.Now()
	all := make([]string, 0, len(c.Events))
	var live []string
	for _, e := range c.Events {
		all = append(all, e.InstanceID)
		if e.To != Absent {
			live = append(live, e.InstanceID)
		}
	}
	prev, err := w.cfg.Store.Enrichments(ctx, t.Target, all)
	if err != nil {
		// Without the previous enrichments no operation can be judged new:
		// publish without enrichment rather than guess.
		t.log.Warn("enrichment: previous values not readable; events go out without enrichment", "err", err)
		w.cfg.Observer.Enriched(t.Target, EnrichEvents, len(live), 0, 0, err)
		return
	}
	fresh := map[string]Enrichment{}
	if len(live) > 0 {
		started := w.cfg.Now()
		dctx, cancel := context.WithTimeout(ctx, w.cfg.EnrichTimeout)
		got, err := t.enricher.Describe(dctx, live)
		cancel()
		took := w.cfg.Now().Sub(started)
		if ctx.Err() != nil {
			return // the cycle is abandoned anyway
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
	// The actors of new operations, until actorWait after enrichment
	// began: with DescribeInstances' time included, the commit is held at
	// most max(EnrichTimeout, actorWait).
	w.lookUpActors(ctx, t, c, begun.Add(actorWait))
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
// and stores the fresh enrichment of each page (see Refreshed: an
// operation the scans may not have seen yet is not recorded early). An
// instance enriched by a commit after the page was fetched keeps that
// newer enrichment. Pages whose values did not change are not written.
func (w *Watcher) RefreshOnce(ctx context.Context, tg Target) error {
	t := w.find(tg)
	if t == nil {
		return fmt.Errorf("watcher: unknown target %s", tg)
	}
	if t.enricher == nil {
		return nil
	}
	started := w.cfg.Now()
	err := t.enricher.List(ctx, func(page []Enrichment) error {
		ids := make([]string, len(page))
		for i, en := range page {
			ids[i] = en.InstanceID
		}
		t.enrichMu.Lock()
		defer t.enrichMu.Unlock()
		prev, err := w.cfg.Store.Enrichments(ctx, tg, ids)
		if err != nil {
			return err
		}
		var put []Enrichment
		for _, en := range page {
			if en.FetchedAt.IsZero() {
				en.FetchedAt = started
			}
			en = en.Bound()
			p, ok := prev[en.InstanceID]
			if ok && p.FetchedAt.After(en.FetchedAt) {
				continue // enriched by a commit since: newer
			}
			if en = Refreshed(en, p, ok); ok && en.Equal(p) {
				continue
			}
			put = append(put, en)
		}
		w.cfg.Observer.Enriched(tg, EnrichRefresh, len(page), len(page), 0, nil)
		if len(put) == 0 {
			return nil
		}
		return w.cfg.Store.PutEnrichments(ctx, tg, put)
	})
	if err != nil {
		w.cfg.Observer.Enriched(tg, EnrichRefresh, 0, 0, w.cfg.Now().Sub(started), err)
		if errors.Is(err, ErrAuth) {
			w.enrichOutcome(t, err, 0, 0)
		}
	}
	return err
}
