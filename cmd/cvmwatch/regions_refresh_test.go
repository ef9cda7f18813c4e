package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// TestRegionsAllRefreshWhileRunning: while the daemon runs, `regions: all`
// is resolved again every poll.region_refresh, and a region that appeared
// is scanned at once, without a restart.
func TestRegionsAllRefreshWhileRunning(t *testing.T) {
	t.Parallel()
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}, InstancesPerRegion: 10, Seed: 9, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	h := newHarnessFor(t, sim, sim.URL())
	h.close()
	h.sim.SetAdvertisedRegions([]string{"ap-guangzhou"})
	h.cfg.Accounts[0].Regions = RegionList{"all"}
	h.cfg.Poll.Jitter = 0
	h.cfg.Poll.RegionRefresh = Duration(100 * time.Millisecond) // below the 1m a config may ask for
	h.open()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	sh := watcher.Target{Account: "prod", Region: "ap-shanghai"}
	h.sim.SetAdvertisedRegions([]string{"ap-guangzhou", "ap-shanghai"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		var scanned bool
		for _, s := range h.d.watcher.Status() {
			if s.Target == sh && !s.LastComplete.IsZero() {
				scanned = true
			}
		}
		if scanned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new region was not scanned within 30s; targets %v", h.d.watcher.Targets())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.d.watcher.Targets(); !slices.Contains(got, sh) || len(got) != 2 {
		t.Fatalf("targets = %v, want guangzhou and shanghai", got)
	}
	for _, s := range h.d.watcher.Status() {
		if s.Target == sh && s.ByState["RUNNING"]+s.ByState["STOPPED"] == 0 {
			t.Fatalf("the new region's scan saw no instance: %+v", s)
		}
	}
}
