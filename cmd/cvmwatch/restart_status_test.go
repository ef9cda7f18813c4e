package main

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// TestRestartKeepsTheLastCompleteScan: after a restart in which every scan
// fails, the stored time of the last complete scan is still in the metrics
// and the status (health, state), so a stale-scan alert can fire and
// /readyz judges the real age, instead of the series being absent until a
// scan succeeds again.
func TestRestartKeepsTheLastCompleteScan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20)
	c := h.scan()
	if !c.Meta.Baselined || c.Meta.LastComplete.IsZero() {
		t.Fatalf("first scan: baselined %v, last complete %v", c.Meta.Baselined, c.Meta.LastComplete)
	}
	last := c.Meta.LastComplete
	h.close()

	h.sim.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "AuthFailure.SecretIdNotFound"})
	h.open()
	if _, err := h.d.watcher.ScanOnce(t.Context(), h.target); err == nil {
		t.Fatal("a scan succeeded although every request fails")
	}

	st := h.d.watcher.Status()
	if len(st) != 1 || !st[0].LastComplete.Equal(last) || !st[0].Baselined || st[0].ByState["RUNNING"]+st[0].ByState["STOPPED"] == 0 {
		t.Fatalf("status after the restart = %+v; want last complete %v, baselined, counts by state", st, last)
	}
	families, err := h.d.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "cvmwatch_last_complete_scan_timestamp_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["account"] != "prod" || labels["region"] != "ap-guangzhou" {
				continue
			}
			found = true
			if got, want := m.GetGauge().GetValue(), float64(last.UnixMilli())/1000; math.Abs(got-want) > 0.001 {
				t.Fatalf("last complete scan metric = %v, want %v", got, want)
			}
		}
	}
	if !found {
		t.Fatal("no last-complete-scan series after a restart whose scans fail")
	}
}

// TestRestartStatusBeforeTheFirstScan: with a long jitter before the first
// scan, the stored status is known at once after a restart, not only once
// the target is scanned again.
func TestRestartStatusBeforeTheFirstScan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20)
	last := h.scan().Meta.LastComplete
	h.close()
	h.cfg.Poll.Jitter = 0.9 // of a 1h interval: no scan during this test
	h.open()
	requests := h.sim.Stats().Requests[cvmsim.ActionDescribeInstancesStatus]

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st := h.d.watcher.Status(); len(st) == 1 && st[0].LastComplete.Equal(last) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after a restart = %+v; want the stored last complete scan %v", h.d.watcher.Status(), last)
		}
	}
	if n := h.sim.Stats().Requests[cvmsim.ActionDescribeInstancesStatus]; n != requests {
		t.Fatalf("%d scan requests during the jitter; the status must come from the store", n-requests)
	}
}
