package cvm_test

import (
	"math"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// BenchmarkFullScan100k scans 100,000 instances through the official SDK
// against the simulator with 100 ms latency per request and the real 40
// req/s quota, with the scanner's limiter at 40 req/s. It reports
//
//	ratio: scan time / (pages / 40 s), the ideal; goal 1.05 or better
//	throttled: responses the simulator throttled; goal 0
//
// Run: go test -run '^$' -bench FullScan100k -benchtime 1x ./watcher/cvm/
func BenchmarkFullScan100k(b *testing.B) {
	const (
		instances = 100_000
		quota     = 40.0
	)
	srv := mustStartSim(b, cvmsim.Options{InstancesPerRegion: instances, RateLimit: quota, Latency: 100 * time.Millisecond})
	s, _ := mustNewScanner(b, srv, scannerOptions{rate: quota})
	pages := math.Ceil(instances / float64(cvm.PageSize))
	ideal := time.Duration(pages / quota * float64(time.Second))

	b.ResetTimer()
	var worst float64
	for range b.N {
		start := time.Now()
		scan, err := s.Scan(b.Context())
		took := time.Since(start)
		if err != nil {
			b.Fatalf("Scan: %v", err)
		}
		if got := len(scan.Observations); got != instances {
			b.Fatalf("observed %d instances, want %d", got, instances)
		}
		worst = max(worst, took.Seconds()/ideal.Seconds())
		b.Logf("scan of %d instances: %d requests in %v (ideal %v)", instances, scan.Stats.Requests, took.Round(time.Millisecond), ideal)
	}
	b.ReportMetric(worst, "ratio")
	b.ReportMetric(float64(srv.Stats().Throttled), "throttled")
	b.ReportMetric(float64(srv.Stats().PeakPerSecond), "peak_req/s")
}
