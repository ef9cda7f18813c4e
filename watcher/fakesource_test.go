package watcher_test

import (
	"context"
	"sync"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// gate is shared by the fakeSources of several targets. It records every
// scan, and, if blocking, holds each scan until the test releases it, so a
// test can count the scans running at once. It is made for synctest bubbles:
// create it inside the bubble so that a scan held at the gate is durably
// blocked.
type gate struct {
	block   bool
	release chan struct{}

	mu       sync.Mutex
	inFlight int
	peak     int
	started  map[watcher.Target][]time.Time // start of each scan, per target
	finished int
}

func newGate(block bool) *gate {
	return &gate{block: block, release: make(chan struct{}), started: map[watcher.Target][]time.Time{}}
}

// source returns the Source of target tg.
func (g *gate) source(tg watcher.Target) watcher.Source { return fakeSource{g: g, target: tg} }

// releaseOne lets one held scan finish. Call it only while a scan is held:
// otherwise it blocks until one starts.
func (g *gate) releaseOne() { g.release <- struct{}{} }

// state is a consistent view of the counters.
func (g *gate) state() (inFlight, peak, finished int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight, g.peak, g.finished
}

// starts returns when each target's scans started.
func (g *gate) starts() map[watcher.Target][]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[watcher.Target][]time.Time, len(g.started))
	for tg, ts := range g.started {
		out[tg] = append([]time.Time(nil), ts...)
	}
	return out
}

// fakeSource lists an empty target, completely, through its gate.
type fakeSource struct {
	g      *gate
	target watcher.Target
}

func (s fakeSource) Scan(ctx context.Context) (watcher.Scan, error) {
	g := s.g
	g.mu.Lock()
	g.inFlight++
	g.peak = max(g.peak, g.inFlight)
	g.started[s.target] = append(g.started[s.target], time.Now())
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.finished++
		g.mu.Unlock()
	}()
	if g.block {
		select {
		case <-g.release:
		case <-ctx.Done():
			return watcher.Scan{}, ctx.Err()
		}
	}
	return watcher.Scan{Target: s.target, Complete: true, Stats: watcher.ScanStats{Started: time.Now()}}, nil
}

func (s fakeSource) Lookup(context.Context, []string) (watcher.LookupResult, error) {
	return watcher.LookupResult{}, nil
}

// describing is a fleet whose scans read every page through
// DescribeInstances: Scan.Described holds what the fleet's
// DescribeInstances says about each instance listed, with the page's state
// and the scan's start as FetchedAt, plus the entries of extra (what a
// hostile or confused page may add).
type describing struct {
	*fleet
	extra []watcher.Enrichment
}

func (d describing) Scan(ctx context.Context) (watcher.Scan, error) {
	s, err := d.fleet.Scan(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range s.Observations {
		en := d.info[o.InstanceID]
		en.State, en.FetchedAt = o.State, s.Stats.Started
		s.Described = append(s.Described, en)
	}
	s.Described = append(s.Described, d.extra...)
	return s, err
}
