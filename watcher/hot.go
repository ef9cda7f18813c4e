package watcher

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// DefaultHotInterval is the time between two lookups of the hot set.
const DefaultHotInterval = time.Second

// hotBatch is the most IDs one hot lookup asks for (the API's page), and
// hotWorkers the lookups of one round in flight at once.
const (
	hotBatch   = 100
	hotWorkers = 4
)

// ErrHotSuperseded is what Observer.HotLookedUp is told when a hot lookup's
// answer was set aside because a scan of the target committed while it was
// in flight: the scan may have read the instances later than the lookup did
// (see the ordering rule on hotRound).
var ErrHotSuperseded = errors.New("hot lookup superseded by a scan committed meanwhile")

// Lookuper looks instances up by ID. The hot set uses its own, so that its
// lookups spend a reserved share of the target's quota (see TargetSource.Hot).
// Implementations are safe for concurrent use and own their retries and
// rate limiting; the contract is Source.Lookup's.
type Lookuper interface {
	Lookup(ctx context.Context, ids []string) (LookupResult, error)
}

// hotLoop looks up the target's hot set every Config.HotInterval until ctx
// is done, between and during full scans.
func (w *Watcher) hotLoop(ctx context.Context, t *target) {
	tick := time.NewTicker(w.cfg.HotInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.hotRound(ctx, t)
	}
}

// hotRound first commits what the pages of the scan in flight read in a
// transitional state (commitPages: an instance seen so on a page joins the
// hot set at the next round, not when its scan commits), then looks up
// every instance of the hot set (the live instances in a transitional
// state, see Snapshot.InMotion) by ID, at most hotBatch per lookup, and
// commits what changed through the same diff (DiffLookup), enrichment,
// commit and outbox as a scan. A lookup proves no absence: an instance it
// does not find is left to the full scans' disappearance rules.
//
// Ordering rule. A hot lookup and a full scan of the same target run
// concurrently, so two observations of one instance can arrive out of the
// order in which they were read. The rule keeps the snapshot moving only
// forward in time, per instance, so the diff never turns a stale answer
// into a transition (no A->B->A from a page read before a lookup that
// commits after it):
//
//   - A hot lookup's answer is applied only if no scan of the target
//     committed between the moment the lookup started and its commit (such
//     a scan may have read the instances after the lookup did); otherwise
//     it is set aside whole (ErrHotSuperseded) and the next round asks
//     again.
//   - A scan's observation of an instance is used only if the scan started
//     after the latest hot lookup that found the instance had returned, or
//     if it agrees with the snapshot's state. Otherwise (overtaken, see
//     overtaken) the instance counts as listed, so it is not missing, but
//     its state is set aside as unreadable: its last sighting stays the
//     hot lookup's, and the next lookup or scan tells its state.
//   - A page of the scan in flight is committed early only while that scan
//     has not committed (else the scan's commit holds it), and an
//     observation on it only if the page started after the latest hot
//     lookup that found the instance had returned (the scan's rule, with
//     the page's own start). It is committed between two rounds, so no
//     hot lookup is in flight that could have read the instance before
//     the page did and commit after it. Once an instance is read on two
//     pages of one scan in two states (pages are read concurrently, so
//     which is later is unknown), nothing more of it is committed early
//     (the scan sets it aside); one read twice in one state counts at its
//     first page. The scan then finds the page's state in the
//     snapshot (no second event), or, if a hot lookup moved it since, is
//     overtaken as above.
//   - An instance a page reads that the snapshot does not hold (or holds
//     as a tombstone) is an appearance, committed early like a transition
//     with the page in the place of the scan (see DiffPages): a PENDING
//     instance is in the hot set from its page on, so its PENDING ->
//     RUNNING is a lookup's. The scan later lists it in that state: no
//     second event, and it counts as listed, not as an appearance.
//
// Every check runs under the target's commit lock, which a scan holds from
// its diff to the snapshot's update and the hot loop from each diff to its
// update, so every diff is made against the snapshot its commit follows.
func (w *Watcher) hotRound(ctx context.Context, t *target) {
	t.commitMu.Lock()
	var ids []string
	if t.snap != nil && t.snap.meta.Baselined {
		w.commitPages(ctx, t)
		if t.snap != nil { // nil: the early commit failed with ErrReload and dropped it
			ids = t.snap.InMotion()
		}
	}
	t.commitMu.Unlock()
	if len(ids) == 0 {
		w.cfg.Observer.HotLookedUp(t.Target, 0, 0, Commit{}, nil)
		return
	}
	batches := slices.Collect(slices.Chunk(ids, hotBatch))
	next := make(chan []string)
	var wg sync.WaitGroup
	for range min(hotWorkers, len(batches)) {
		wg.Go(func() {
			for b := range next {
				w.hotLookup(ctx, t, b, len(ids))
			}
		})
	}
	for _, b := range batches {
		select {
		case next <- b:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}

// hotLookup looks up one batch of the hot set and commits its changes; see
// hotRound for the ordering rule.
func (w *Watcher) hotLookup(ctx context.Context, t *target, ids []string, inMotion int) {
	if ctx.Err() != nil {
		return
	}
	t.commitMu.Lock()
	gen := t.scanCommits
	t.commitMu.Unlock()
	started := w.cfg.Now()
	lr, lookupErr := t.hot.Lookup(ctx, ids)
	done := w.cfg.Now()
	if ctx.Err() != nil {
		return
	}
	if len(lr.Found) == 0 {
		w.cfg.Observer.HotLookedUp(t.Target, inMotion, len(ids), Commit{}, lookupErr)
		return
	}
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	if t.scanCommits != gen || t.snap == nil {
		w.cfg.Observer.HotLookedUp(t.Target, inMotion, len(ids), Commit{}, ErrHotSuperseded)
		return
	}
	c := DiffLookup(t.snap, t.Target, lr.Found, started, done)
	if len(c.Events) > 0 {
		t.enrichMu.Lock()
		w.enrich(ctx, t, &c, w.cfg.HotInterval) // a hot commit waits for actors one interval at most
		_, _, err := w.cfg.Store.Commit(ctx, t.Target, c)
		t.enrichMu.Unlock()
		if err != nil {
			t.commitFailed(err)
			if ctx.Err() == nil {
				t.log.Warn("hot lookup not committed", "events", len(c.Events), "err", err)
			}
			w.cfg.Observer.HotLookedUp(t.Target, inMotion, len(ids), Commit{}, err)
			return
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	// Every instance found was seen at started: in memory only (see
	// Snapshot.Apply), so an unchanged hot set writes nothing.
	t.snap.Apply(c, Scan{Target: t.Target, Observations: lr.Found, Stats: ScanStats{Started: started}})
	for _, o := range lr.Found {
		t.hotSeen[o.InstanceID] = done
	}
	w.cfg.Observer.HotLookedUp(t.Target, inMotion, len(ids), c, lookupErr)
	if len(c.Events) > 0 {
		t.log.Debug("hot lookup", "asked", len(ids), "found", len(lr.Found), "events", len(c.Events))
	}
}

// overtaken applies the scan half of hotRound's ordering rule before a
// scan is diffed: an observation of an instance that a hot lookup found
// after the scan had started (so possibly later than the scan's page read
// it), and that disagrees with the snapshot, is moved to Unreadable.
// Sightings older than the scan's start are forgotten: no later scan can be
// overtaken by them. The caller holds t.commitMu.
func (t *target) overtaken(scan Scan) (Scan, int) {
	for id, at := range t.hotSeen {
		if scan.Stats.Started.After(at) {
			delete(t.hotSeen, id)
		}
	}
	if len(t.hotSeen) == 0 {
		return scan, 0
	}
	var keep []Observation
	var set []string
	for i, o := range scan.Observations {
		_, hot := t.hotSeen[o.InstanceID]
		if rec, ok := t.snap.Get(o.InstanceID); !hot || !ok || rec.State == o.State {
			if set != nil {
				keep = append(keep, o)
			}
			continue
		}
		if set == nil {
			keep = slices.Clone(scan.Observations[:i])
		}
		set = append(set, o.InstanceID)
	}
	if set == nil {
		return scan, 0
	}
	scan.Observations = keep
	scan.Unreadable = slices.Concat(scan.Unreadable, set)
	slices.Sort(scan.Unreadable)
	return scan, len(set)
}
