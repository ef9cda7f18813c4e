package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cvmwatch/cvmwatch/watcher"
)

var metricName = regexp.MustCompile(`\bcvmwatch_[a-z_]+\b`)

// exportedMetricNames exercises every metric once and returns the names the
// registry exposes.
func exportedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := newMetrics(nil)
	tg := watcher.Target{Account: "a", Region: "r"}
	scan := watcher.Scan{Target: tg, Complete: true, Stats: watcher.ScanStats{Pages: 1, Duration: time.Second}}
	c := watcher.Commit{Events: []watcher.Event{{From: "RUNNING", To: "STOPPED"}}, Meta: watcher.ScanMeta{LastComplete: time.Now()}}
	m.ScanCommitted(tg, scan, c, map[watcher.State]int{"RUNNING": 1}, 1)
	m.CycleFailed(tg, nil)
	m.Relayed(tg, 1, time.Millisecond, os.ErrClosed)
	m.OutboxState(tg, 1, time.Now())
	m.Request("a", "DescribeInstancesStatus", "RequestLimitExceeded", time.Millisecond)
	m.Progress(tg, 1, 2)
	m.HotLookedUp(tg, 3, 3, c, nil)
	m.watchStatus(func() []watcher.TargetStatus {
		return []watcher.TargetStatus{{Target: tg, LastComplete: time.Now()}}
	})
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"cvmwatch_nats_connected": true} // registered only with a connection
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

// TestDashboardAndAlertsUseExistingMetrics checks every metric name in the
// shipped Grafana dashboard and Prometheus rules against the registry.
func TestDashboardAndAlertsUseExistingMetrics(t *testing.T) {
	names := exportedMetricNames(t)
	for _, f := range []string{"grafana-dashboard.json", "prometheus-alerts.yml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "configs", f))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(f, ".json"):
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		default:
			var v struct {
				Groups []struct {
					Rules []struct{ Alert, Expr string }
				}
			}
			if err := yaml.Unmarshal(raw, &v); err != nil || len(v.Groups) == 0 || len(v.Groups[0].Rules) < 5 {
				t.Fatalf("%s: %v (%d groups)", f, err, len(v.Groups))
			}
		}
		used := metricName.FindAllString(string(raw), -1)
		if len(used) == 0 {
			t.Fatalf("%s names no metric", f)
		}
		for _, n := range used {
			if !names[n] {
				t.Errorf("%s uses %s, which cvmwatch does not export", f, n)
			}
		}
	}
}
