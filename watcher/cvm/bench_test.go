package cvm_test

import (
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// BenchmarkFullScan100k scans 100,000 instances through the official SDK
// against the simulator with 100 ms latency per request and the real 40
// req/s quota per API, with the scanner's limiter at 40 req/s. The
// "status" variant reads every page through DescribeInstancesStatus, the
// "mixed" one also through DescribeInstances at its default share
// (cvm.DefaultDescribeShare of a 40 req/s limiter). Each reports
//
//	ratio: scan time / (pages / 40 s), the single-API limit; goal 1.05 or
//	  better for status, 0.6 or better for mixed
//	throttled: responses the simulator throttled; goal 0
//	status_req, describe_req: requests per API
//	cpu_s: user+sys CPU of the whole process over the scan (the simulator
//	  runs in it too: it encodes what the scanner decodes)
//
// Run: go test -run '^$' -bench FullScan100k -benchtime 1x ./watcher/cvm/
func BenchmarkFullScan100k(b *testing.B) {
	for _, mixed := range []bool{false, true} {
		name := "status"
		if mixed {
			name = "mixed"
		}
		b.Run(name, func(b *testing.B) { benchFullScan(b, mixed) })
	}
}

func benchFullScan(b *testing.B, mixed bool) {
	const (
		instances = 100_000
		quota     = 40.0
	)
	srv := mustStartSim(b, cvmsim.Options{InstancesPerRegion: instances, RateLimit: quota, Latency: 100 * time.Millisecond})
	o := scannerOptions{rate: quota}
	if mixed {
		o.describe = cvm.NewLimiter(quota, 1).Share(cvm.DefaultDescribeShare)
	}
	s, _ := mustNewScanner(b, srv, o)
	pages := math.Ceil(instances / float64(cvm.PageSize))
	ideal := time.Duration(pages / quota * float64(time.Second))

	b.ResetTimer()
	var worst, cpu float64
	for range b.N {
		cpu0 := cpuSeconds(b)
		start := time.Now()
		scan, err := s.Scan(b.Context())
		took := time.Since(start)
		cpu = max(cpu, cpuSeconds(b)-cpu0)
		if err != nil {
			b.Fatalf("Scan: %v", err)
		}
		if got := len(scan.Observations); got != instances {
			b.Fatalf("observed %d instances, want %d", got, instances)
		}
		if mixed && scan.Stats.DescribedPages == 0 {
			b.Fatal("mixed scan read no page through DescribeInstances")
		}
		worst = max(worst, took.Seconds()/ideal.Seconds())
		b.Logf("scan of %d instances: %d requests (%d pages through DescribeInstances) in %v (single-API limit %v)",
			instances, scan.Stats.Requests, scan.Stats.DescribedPages, took.Round(time.Millisecond), ideal)
	}
	st := srv.Stats()
	b.ReportMetric(worst, "ratio")
	b.ReportMetric(float64(st.Throttled), "throttled")
	b.ReportMetric(float64(st.PeakPerSecond), "peak_req/s")
	b.ReportMetric(float64(st.Requests[cvm.ActionDescribeInstancesStatus]), "status_req")
	b.ReportMetric(float64(st.Requests[cvm.ActionDescribeInstances]), "describe_req")
	b.ReportMetric(cpu, "cpu_s")
}

// cpuSeconds is the process's user+sys CPU time so far.
func cpuSeconds(tb testing.TB) float64 {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
