package watcher

import (
	"context"
	"slices"
	"sync"
)

// pageFeed carries to the hot loop what the pages of the scan in flight
// read in a transitional state, so that such an instance joins the hot set
// within a hot interval of its page instead of at the scan's commit (up to
// a scan's duration later). The hot loop commits it between its rounds
// (commitPages); the scan commits everything again, as always.
type pageFeed struct {
	mu sync.Mutex
	// gen is the target's scanCommits when the scan in flight started: its
	// pages are worth committing early only until that scan commits.
	gen uint64
	// pages holds the pages not yet taken, cut to their transitional
	// observations.
	pages []Page
	// states is the transitional state each instance was fed in since gen
	// began; conflict the instances fed in two (pages are read
	// concurrently, so which is later is unknown): from then on none of
	// their observations is taken, and the scan sets them aside.
	states   map[string]State
	conflict map[string]bool
}

// begin starts feeding the pages of a scan that starts at generation gen,
// dropping whatever an earlier scan fed.
func (f *pageFeed) begin(gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen, f.pages, f.states, f.conflict = gen, nil, map[string]State{}, map[string]bool{}
}

// add feeds the transitional observations of a page of the scan begun at gen.
func (f *pageFeed) add(gen uint64, p Page) {
	var moving []Observation
	for _, o := range p.Observations {
		if o.State.Transitional() {
			moving = append(moving, o)
		}
	}
	if len(moving) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen || f.states == nil {
		return
	}
	for _, o := range moving {
		if st, ok := f.states[o.InstanceID]; ok && st != o.State {
			f.conflict[o.InstanceID] = true
		} else if !ok {
			f.states[o.InstanceID] = o.State
		}
	}
	f.pages = append(f.pages, Page{Observations: moving, Started: p.Started, Done: p.Done})
}

// take returns the pages fed and not yet taken, without the instances fed
// in two states, if the scan that fed them is still the one in flight at
// generation gen; nil once it has committed (its commit holds them).
func (f *pageFeed) take(gen uint64) []Page {
	f.mu.Lock()
	defer f.mu.Unlock()
	pages := f.pages
	f.pages = nil
	if f.gen != gen {
		f.states, f.conflict = nil, nil
		return nil
	}
	for i := range pages {
		pages[i].Observations = slices.DeleteFunc(pages[i].Observations,
			func(o Observation) bool { return f.conflict[o.InstanceID] })
	}
	return pages
}

// scan runs the target's scan. With a hot set, a baselined snapshot and a
// source that is a PageScanner, the pages' transitional observations are
// fed to the hot loop as they arrive.
func (w *Watcher) scan(ctx context.Context, t *target) (Scan, error) {
	ps, ok := t.source.(PageScanner)
	if !ok || t.hot == nil {
		return t.source.Scan(ctx)
	}
	t.commitMu.Lock()
	gen, baselined := t.scanCommits, t.snap != nil && t.snap.meta.Baselined // nil: dropped on ErrReload
	t.commitMu.Unlock()
	if !baselined {
		return t.source.Scan(ctx)
	}
	t.feed.begin(gen)
	return ps.ScanPages(ctx, func(p Page) { t.feed.add(gen, p) })
}

// commitPages commits what the pages of the scan in flight read in a
// transitional state and the snapshot does not hold yet (DiffPages: a
// transition, or an appearance), so those instances are in the hot set
// for the round that follows. It runs in the hot loop, between rounds, so
// no hot lookup of the target is in flight; the caller holds t.commitMu.
// See hotRound for the ordering rule it keeps. A failed commit drops the
// pages: the scan commits them.
func (w *Watcher) commitPages(ctx context.Context, t *target) {
	pages := t.feed.take(t.scanCommits)
	if t.snap == nil {
		return // dropped on ErrReload: the next cycle loads it again and its scan commits these
	}
	for i, p := range pages {
		pages[i].Observations = slices.DeleteFunc(p.Observations, func(o Observation) bool {
			at, hot := t.hotSeen[o.InstanceID]
			return hot && !p.Started.After(at) // overtaken: a lookup may have read it later
		})
	}
	c := DiffPages(t.snap, t.Target, pages)
	if len(c.Events) == 0 {
		return
	}
	t.enrichMu.Lock()
	w.enrich(ctx, t, &c, w.cfg.HotInterval)
	_, _, err := w.cfg.Store.Commit(ctx, t.Target, c)
	t.enrichMu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			t.log.Warn("scan pages not committed early", "events", len(c.Events), "err", err)
		}
		w.cfg.Observer.HotLookedUp(t.Target, len(t.snap.moving), 0, Commit{}, err)
		t.commitFailed(err)
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
	t.snap.Apply(c, Scan{Target: t.Target})
	w.cfg.Observer.HotLookedUp(t.Target, len(t.snap.moving), 0, c, nil)
	t.log.Debug("scan pages committed early", "pages", len(pages), "events", len(c.Events))
}
