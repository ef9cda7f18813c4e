package watcher

import (
	"context"
	"fmt"
	"time"
)

// described turns what a scan read through DescribeInstances
// (scan.Described) into fresh enrichments of the instances no transition
// of c is about (a transition's are fetched by enrich), as a refresh does:
// it appends to c the operation events of new operations that left no
// visible state change, observed at the scan's end, and the enrichments
// that changed (see reconcile). With enrichment off (no Enricher) it does
// nothing: no enrichment is kept to compare with. It never fails the
// cycle: without the stored enrichments it adds nothing. The caller holds
// t.commitMu and t.enrichMu, and calls it before enrich, which looks up
// the actors of the operation events with the transitions'.
func (w *Watcher) described(ctx context.Context, t *target, c *Commit, scan Scan) {
	if t.enricher == nil || len(scan.Described) == 0 {
		return
	}
	moved := make(map[string]bool, len(c.Events))
	for _, e := range c.Events {
		moved[e.InstanceID] = true
	}
	fresh := make([]Enrichment, 0, len(scan.Described))
	ids := make([]string, 0, len(scan.Described))
	for _, en := range scan.Described {
		if moved[en.InstanceID] {
			continue
		}
		if en.FetchedAt.IsZero() {
			en.FetchedAt = scan.Stats.Started
		}
		fresh = append(fresh, en.Bound())
		ids = append(ids, en.InstanceID)
	}
	if len(fresh) == 0 {
		return
	}
	prev, err := w.cfg.Store.Enrichments(ctx, t.Target, ids)
	if err != nil {
		t.log.Warn("enrichment: previous values not readable; what the scan described is not used", "err", err)
		return
	}
	if n := t.reconcile(c, fresh, prev, scan.Stats.Started.Add(scan.Stats.Duration)); n > 0 {
		t.log.Info("operations that left no visible state change", "events", n, "from", "scan")
	}
}

// reconcile applies Reconcile to fresh enrichments (bounded, FetchedAt
// set, answered no later than arrived) of instances no transition of c is
// about, given their stored ones (prev): it appends to c the operation
// events and the enrichments to store (those whose values changed, and
// every one that reports an operation). A fresh enrichment older than the
// stored one is skipped (a commit enriched the instance since), and so is
// an instance's second entry. It returns the operation events appended.
// The caller holds t.commitMu (t.snap may be nil: nothing is known, every
// new operation is held) and t.enrichMu.
func (t *target) reconcile(c *Commit, fresh []Enrichment, prev map[string]Enrichment, arrived time.Time) int {
	n := 0
	seen := make(map[string]bool, len(fresh))
	for _, en := range fresh {
		if seen[en.InstanceID] {
			continue
		}
		seen[en.InstanceID] = true
		p, hadPrev := prev[en.InstanceID]
		if hadPrev && p.FetchedAt.After(en.FetchedAt) {
			continue
		}
		var state State
		var entered time.Time
		known := false
		if t.snap != nil {
			if r, ok := t.snap.Get(en.InstanceID); ok && r.State != Absent {
				state, known = r.State, true
				if r.Sequence > 0 { // entered by a transition, not known since the baseline
					entered = r.Since
				}
			}
		}
		keep, op := Reconcile(en, p, hadPrev, state, known, entered)
		if op != nil {
			c.Events = append(c.Events, OperationEvent(t.Target, keep, p.FetchedAt, arrived))
			n++
		}
		if !hadPrev || op != nil || !keep.Equal(p) {
			c.Enrich = append(c.Enrich, keep)
		}
	}
	return n
}

// commitOperations commits the operation events a refresh page found with
// the enrichments that show them (c), under the snapshot's metadata (a
// refresh is not a scan): their actors are left to follow-ups. The caller
// holds t.commitMu and t.enrichMu.
func (w *Watcher) commitOperations(ctx context.Context, t *target, c Commit) error {
	if t.snap == nil {
		return fmt.Errorf("commit operations of %s: %w", t.Target, ErrReload)
	}
	c.Meta = t.snap.Meta()
	w.lookUpActors(ctx, t, &c, time.Time{}) // no wait: CloudAudit is asked by the attribution loop
	if _, _, err := w.cfg.Store.Commit(ctx, t.Target, c); err != nil {
		t.commitFailed(err)
		return fmt.Errorf("commit operations of %s: %w", t.Target, err)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
	if ro, ok := w.cfg.Observer.(RefreshObserver); ok {
		ro.RefreshCommitted(t.Target, c)
	}
	t.log.Info("operations that left no visible state change", "events", len(c.Events), "from", "refresh")
	w.observeOutbox(ctx, t)
	return nil
}
