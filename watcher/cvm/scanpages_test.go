package cvm_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// ScanPages hands over every page that succeeded, once, as it arrives, with
// a read interval, and not the page that failed: together they are exactly
// the scan's observations. The pages are collected without a lock, so the
// race detector proves the calls are not concurrent.
func TestScanPagesHandsOverEveryPageThatSucceeded(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 1000, Seed: 3})
	s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 2})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Offset: intp(500)})
	var pages []watcher.Page
	scan, err := s.ScanPages(t.Context(), func(p watcher.Page) {
		p.Observations = append([]watcher.Observation(nil), p.Observations...) // not kept by contract
		pages = append(pages, p)
	})
	if !errors.Is(err, watcher.ErrIncomplete) {
		t.Fatalf("ScanPages error = %v, want ErrIncomplete (the page at 500 fails)", err)
	}
	if got, want := len(pages), scan.Stats.Pages; got != want || got != 9 {
		t.Fatalf("pages handed over = %d, want %d (the scan's good pages, 9)", got, want)
	}
	union := map[string]string{}
	for i, p := range pages {
		if len(p.Observations) == 0 || len(p.Observations) > 100 {
			t.Errorf("page %d has %d observations", i, len(p.Observations))
		}
		if p.Started.IsZero() || p.Done.Before(p.Started) || p.Started.Before(scan.Stats.Started) {
			t.Errorf("page %d read in [%v, %v], scan started %v", i, p.Started, p.Done, scan.Stats.Started)
		}
		for _, o := range p.Observations {
			if _, dup := union[o.InstanceID]; dup {
				t.Errorf("page %d repeats %s", i, o.InstanceID)
			}
			union[o.InstanceID] = string(o.State)
		}
	}
	if got, want := union, observed(scan); len(want) != 900 || !maps.Equal(got, want) {
		t.Fatalf("pages hold %d instances, the scan %d (want 900), or they differ", len(got), len(want))
	}
}
