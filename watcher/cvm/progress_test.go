package cvm_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// progressRecorder is a cvm.Observer that keeps every progress report.
type progressRecorder struct {
	mu      sync.Mutex
	reports [][2]int
}

func (r *progressRecorder) Request(string, string, string, time.Duration) {}

func (r *progressRecorder) Progress(_ watcher.Target, done, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, [2]int{done, total})
}

// TestLongScanReportsProgress: a scan of several pages tells the observer
// (metrics, state) of every page done out of the total, and logs its
// progress while it lasts.
func TestLongScanReportsProgress(t *testing.T) {
	t.Parallel()
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 500, Seed: 4, RateLimit: -1, Latency: 200 * time.Millisecond})
	client, err := cvm.NewClient(cvm.ClientConfig{Region: testRegion, Endpoint: srv.URL(),
		Credential: common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	obs := &progressRecorder{}
	s, err := cvm.NewScanner(cvm.ScannerConfig{
		Target: watcher.Target{Account: "test", Region: testRegion}, Client: client, Limiter: cvm.NewLimiter(1000, 1),
		// Every page takes at least 200 ms and the first one alone comes
		// before the rest: the scan lasts far longer than ProgressEvery.
		PageConcurrency: 2, ProgressEvery: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	scan, err := s.Scan(t.Context())
	if err != nil || !scan.Complete || len(scan.Observations) != 500 {
		t.Fatalf("scan: complete %v, %d observations, %v", scan.Complete, len(scan.Observations), err)
	}

	obs.mu.Lock()
	reports := append([][2]int(nil), obs.reports...)
	obs.mu.Unlock()
	if len(reports) != 5 {
		t.Fatalf("progress reports %v, want one per page of 5", reports)
	}
	for i, r := range reports {
		if r[0] != i+1 || r[1] != 5 {
			t.Fatalf("progress report %d = %d/%d, want %d/5 (all: %v)", i, r[0], r[1], i+1, reports)
		}
	}
	if !strings.Contains(logs.String(), "scan in progress") || !strings.Contains(logs.String(), "pages_total=5") {
		t.Fatalf("no progress line in the log:\n%s", logs.String())
	}
}
