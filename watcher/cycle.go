package watcher

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// cycle is one scan of a target: scan, diff, look up disappearance
// candidates, commit snapshot changes and events in one store transaction,
// then wake the relay. The in-memory snapshot advances only once the commit
// is durable. A cancelled context abandons the cycle before the commit.
func (w *Watcher) cycle(ctx context.Context, t *target) (c Commit, err error) {
	committed := false
	defer func() {
		if err == nil || ctx.Err() != nil {
			return
		}
		t.setError(err)
		if !committed {
			w.cfg.Observer.CycleFailed(t.Target, err)
		}
	}()
	if err := w.loadSnapshot(ctx, t); err != nil {
		return Commit{}, err
	}

	scan, scanErr := w.scan(ctx, t)
	if ctx.Err() != nil {
		return Commit{}, ctx.Err()
	}
	if scanErr != nil {
		level := t.log.Warn
		if errors.Is(scanErr, ErrAuth) {
			level = t.log.Error // not retried until the next cycle
		}
		level("scan incomplete", "err", scanErr, "observed", len(scan.Observations))
	}
	if len(scan.Observations) == 0 && len(scan.Unreadable) == 0 && !scan.Complete {
		return Commit{}, scanErr // nothing learned; nothing to commit
	}
	scan.Target = t.Target

	c, d, byState, err := w.diffCommit(ctx, t, scan)
	if err != nil {
		return Commit{}, err
	}
	committed = true
	select {
	case t.wake <- struct{}{}:
	default:
	}
	t.log.Info("scan", "complete", scan.Complete, "events", len(c.Events), "instances", len(scan.Observations),
		"pages", scan.Stats.Pages, "requests", scan.Stats.Requests, "retries", scan.Stats.Retries,
		"throttles", scan.Stats.Throttles, "rejected", scan.Stats.Rejected, "held", d.Held(),
		"duration", scan.Stats.Duration.Round(time.Millisecond))
	t.mu.Lock()
	t.status.LastScan, t.status.Baselined, t.status.ByState, t.status.Held = c.Meta.LastScan, c.Meta.Baselined, byState, d.Held()
	t.status.LastComplete = c.Meta.LastComplete
	t.status.LastError = ""
	if scanErr != nil {
		t.status.LastError = scanErr.Error()
	}
	t.mu.Unlock()
	w.cfg.Observer.ScanCommitted(t.Target, scan, c, byState, d.Held())
	w.observeOutbox(ctx, t)
	w.publishSummary(ctx, t, scan, c, byState, d.Held())
	return c, scanErr
}

func (t *target) setError(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status.LastError = err.Error()
}

// observeOutbox reports the outbox's depth and age to the status and the
// observer.
func (w *Watcher) observeOutbox(ctx context.Context, t *target) {
	depth, oldest, err := w.cfg.Store.OutboxStats(ctx, t.Target)
	if err != nil {
		return
	}
	t.mu.Lock()
	t.status.OutboxDepth, t.status.OutboxOldest = depth, oldest
	t.mu.Unlock()
	w.cfg.Observer.OutboxState(t.Target, depth, oldest)
}

// publishSummary sends the heartbeat in the background, one at a time per
// target, so a slow or absent broker never delays scanning.
func (w *Watcher) publishSummary(ctx context.Context, t *target, scan Scan, c Commit, byState map[State]int, held int) {
	if !t.summaryBusy.TryLock() {
		return
	}
	n := 0
	for _, v := range byState {
		n += v
	}
	s := ScanSummary{
		Target: t.Target, Started: scan.Stats.Started, Duration: scan.Stats.Duration,
		Complete: scan.Complete, Instances: n, ByState: byState, Events: len(c.Events),
		HeldDisappearances: held, Stats: scan.Stats,
	}
	go func() {
		defer t.summaryBusy.Unlock()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := w.cfg.Publisher.PublishScan(ctx, s); err != nil {
			t.log.Debug("scan summary not published", "err", err)
		}
	}()
}

// loadSnapshot loads the target's snapshot from the store, once. Until this
// process commits a scan, the target's status is the stored one: after a
// restart, health, state and metrics know when the target was last scanned
// even if no scan succeeds now.
func (w *Watcher) loadSnapshot(ctx context.Context, t *target) error {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	if t.snap != nil {
		return nil
	}
	snap, err := LoadSnapshot(func(fn func(Record) error) (ScanMeta, error) {
		return w.cfg.Store.Load(ctx, t.Target, fn)
	})
	if err != nil {
		return fmt.Errorf("load snapshot of %s: %w", t.Target, err)
	}
	t.snap = snap
	t.log.Info("snapshot loaded", "records", snap.Len(), "baselined", snap.Meta().Baselined)
	meta := snap.Meta()
	t.mu.Lock()
	t.status.LastScan, t.status.LastComplete, t.status.Baselined = meta.LastScan, meta.LastComplete, meta.Baselined
	t.status.ByState = snap.CountByState()
	t.mu.Unlock()
	return nil
}

// commitFailed drops the snapshot when the store says it may no longer
// match (ErrReload), so that the next cycle loads it again rather than
// diffing on it; t.commitMu is held. It also ends the generation, so a hot
// lookup started on the old snapshot is set aside.
func (t *target) commitFailed(err error) {
	if !errors.Is(err, ErrReload) {
		return
	}
	t.snap = nil
	t.scanCommits++
	t.log.Warn("snapshot dropped: the store must be read again before the next commit", "err", err)
}

// diffCommit diffs a scan against the snapshot, looks up its disappearance
// candidates, adds the operation events of what the scan described (see
// described), enriches and commits the result and advances the snapshot,
// all under t.commitMu so that no hot lookup commits in between (see
// hotRound for the ordering rule, whose scan half, overtaken, runs first).
// It returns the commit, the diff and the live instances by state after it.
func (w *Watcher) diffCommit(ctx context.Context, t *target, scan Scan) (Commit, *Pending, map[State]int, error) {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	if t.snap == nil {
		// Dropped by a hot lookup's commit since this cycle loaded it.
		return Commit{}, nil, nil, fmt.Errorf("commit %s: %w", t.Target, ErrReload)
	}
	scan, n := t.overtaken(scan)
	if n > 0 {
		t.log.Debug("scan observations overtaken by hot lookups set aside", "instances", n)
	}
	d := Diff(t.snap, scan, w.cfg.Policy)
	var lr LookupResult
	lookupStart := w.cfg.Now()
	if cands := d.Candidates(); len(cands) > 0 {
		var err error
		lr, err = t.source.Lookup(ctx, cands)
		if err != nil {
			t.log.Warn("lookup of disappearance candidates incomplete", "candidates", len(cands), "err", err)
		}
		if ctx.Err() != nil {
			return Commit{}, nil, nil, ctx.Err()
		}
	}
	lookupDone := w.cfg.Now()
	if d.Mass() {
		t.log.Error("mass disappearance held back: most of the target is missing from a complete listing; "+
			"no instance is declared gone until it persists",
			"held", d.Held(), "policy_scans", w.cfg.Policy.MassConfirmScans)
	}
	c := d.Resolve(lr, lookupStart, lookupDone)
	t.enrichMu.Lock()
	w.described(ctx, t, &c, scan)
	w.enrich(ctx, t, &c, w.cfg.ActorWait)
	w.crash(CrashAfterScan)

	_, _, err := w.cfg.Store.Commit(ctx, t.Target, c)
	t.enrichMu.Unlock()
	if err != nil {
		t.commitFailed(err)
		return Commit{}, nil, nil, fmt.Errorf("commit %s: %w", t.Target, err)
	}
	w.crash(CrashAfterCommit)
	t.snap.Apply(c, scan)
	t.scanCommits++
	return c, d, t.snap.CountByState(), nil
}
