package cvm

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// RegionSource lists regions; *RegionLister is one. List must be safe to
// call again after an error, and its result is not kept.
type RegionSource interface {
	List(ctx context.Context) ([]string, error)
}

var _ RegionSource = (*RegionLister)(nil)

// RegionWatcher follows the regions of one credential (`regions: all`): it
// lists them every Interval and calls OnNew for each region it has not
// known before. It only ever adds: a region that disappears from a listing
// stays known and OnNew is never called for it again (nothing is deleted on
// the word of a listing), and a failed listing is logged and changes
// nothing. A region whose OnNew fails stays unknown, so the next listing
// that names it tries again.
//
// The fields are set before first use and not changed after. Its methods
// are safe for concurrent use; listings are made one at a time. It reads
// the time only through time.NewTicker, so tests run it in a synctest
// bubble rather than through real intervals.
type RegionWatcher struct {
	// Lister lists the regions; required.
	Lister RegionSource
	// Interval is the time between two listings of Run; required.
	Interval time.Duration
	// OnNew is called, in the order of the listing, for each region not
	// known yet; required. A nil return makes the region known.
	OnNew func(ctx context.Context, region string) error
	// Logger receives a line per failed listing and per new region (added
	// or not); nil discards.
	Logger *slog.Logger

	mu    sync.Mutex // held through a whole listing
	known map[string]bool
}

// Resolve lists the regions once and makes them all known without calling
// OnNew: the resolution at start-up, whose regions the caller watches
// itself. Its error is returned, not logged.
func (w *RegionWatcher) Resolve(ctx context.Context) ([]string, error) {
	if w.Lister == nil {
		return nil, errors.New("region watcher: no lister")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	regions, err := w.Lister.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range regions {
		w.markKnown(r)
	}
	return regions, nil
}

// Refresh lists the regions once and calls OnNew for each one not known
// yet. A failed listing is logged (unless ctx is done) and returned; the known regions stay as
// they are. A failed OnNew is logged, not returned.
func (w *RegionWatcher) Refresh(ctx context.Context) error {
	if w.Lister == nil || w.OnNew == nil {
		return errors.New("region watcher: no lister or no OnNew")
	}
	log := w.logger()
	w.mu.Lock()
	defer w.mu.Unlock()
	regions, err := w.Lister.List(ctx)
	if err != nil {
		if ctx.Err() == nil { // not the end of the run
			log.Warn("regions: listing failed; keeping the known regions", "err", err)
		}
		return err
	}
	for _, r := range regions {
		if w.known[r] {
			continue
		}
		if err := w.OnNew(ctx, r); err != nil {
			log.Error("regions: cannot watch a new region", "region", r, "err", err)
			continue
		}
		w.markKnown(r)
		log.Info("regions: watching a new region", "region", r)
	}
	return nil
}

// Run calls Refresh every Interval, the first time one Interval after it
// starts, until ctx is done; it then returns nil. Listing errors do not
// stop it. It returns an error at once if a required field is missing.
func (w *RegionWatcher) Run(ctx context.Context) error {
	if w.Lister == nil || w.OnNew == nil || w.Interval <= 0 {
		return errors.New("region watcher: Lister, OnNew and a positive Interval are required")
	}
	tick := time.NewTicker(w.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		_ = w.Refresh(ctx) // logged there; the next tick tries again
	}
}

// markKnown records r; w.mu is held.
func (w *RegionWatcher) markKnown(r string) {
	if w.known == nil {
		w.known = make(map[string]bool)
	}
	w.known[r] = true
}

func (w *RegionWatcher) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}
