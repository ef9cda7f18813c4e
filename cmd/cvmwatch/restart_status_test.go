package main

import (
	"math"
	"testing"

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
