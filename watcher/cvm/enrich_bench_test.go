package cvm_test

import (
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// BenchmarkFullScan100kEnriched is BenchmarkFullScan100k through the
// watcher's whole cycle with enrichment on: 1% of the 100,000 instances
// change (with an operation) before the measured scan, so the cycle also
// describes 1,000 instances with DescribeInstances (its own 40 req/s quota
// and limiter) before it commits. It reports the cycle's ratio to the
// scan's ideal (pages / 40 s; goal 1.05 or better), the DescribeInstances
// requests apart, and the throttled responses (goal 0).
//
// Run: go test -run '^$' -bench FullScan100kEnriched -benchtime 1x ./watcher/cvm/
func BenchmarkFullScan100kEnriched(b *testing.B) {
	const (
		instances = 100_000
		quota     = 40.0
	)
	srv := mustStartSim(b, cvmsim.Options{InstancesPerRegion: instances, RateLimit: quota, Latency: 100 * time.Millisecond})
	s, _ := mustNewScanner(b, srv, scannerOptions{rate: quota})
	client, err := cvm.NewClient(cvm.ClientConfig{Region: testRegion, Endpoint: srv.URL(),
		Credential: common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey)})
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := cvm.NewEnricher(cvm.EnricherConfig{Target: enrTarget, Client: client, Limiter: cvm.NewLimiter(quota, 1), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	w, err := watcher.New(watcher.Config{Store: store.NewMemory(), Publisher: mempub.New(), Logger: quiet, EnrichTimeout: time.Minute},
		[]watcher.TargetSource{{Target: enrTarget, Source: s, Enricher: e}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.ScanOnce(b.Context(), enrTarget); err != nil { // baseline
		b.Fatal(err)
	}
	pages := math.Ceil(instances / float64(cvm.PageSize))
	ideal := time.Duration(pages / quota * float64(time.Second))

	b.ResetTimer()
	var worst float64
	for range b.N {
		b.StopTimer()
		changed := 0
		for _, in := range srv.Instances(testRegion) {
			if changed == instances/100 {
				break
			}
			if in.InstanceState == "RUNNING" {
				if _, err := srv.Update(in.InstanceId, cvmsim.Update{State: "STOPPED", Operation: "StopInstances"}); err != nil {
					b.Fatal(err)
				}
				changed++
			}
		}
		before := srv.Stats().Requests[cvm.ActionDescribeInstances]
		b.StartTimer()
		start := time.Now()
		c, err := w.ScanOnce(b.Context(), enrTarget)
		took := time.Since(start)
		if err != nil {
			b.Fatalf("ScanOnce: %v", err)
		}
		enriched := 0
		for _, ev := range c.Events {
			if ev.Instance != nil {
				enriched++
			}
		}
		if len(c.Events) < changed || enriched != len(c.Events) {
			b.Fatalf("%d events, %d enriched; want at least %d, all enriched", len(c.Events), enriched, changed)
		}
		worst = max(worst, took.Seconds()/ideal.Seconds())
		b.Logf("cycle of %d instances, %d events: %v (ideal scan %v), %d DescribeInstances requests", instances, len(c.Events),
			took.Round(time.Millisecond), ideal, srv.Stats().Requests[cvm.ActionDescribeInstances]-before)
		b.ReportMetric(float64(srv.Stats().Requests[cvm.ActionDescribeInstances]-before), "enrich_requests")
	}
	b.ReportMetric(worst, "ratio")
	b.ReportMetric(float64(srv.Stats().Throttled), "throttled")
}
