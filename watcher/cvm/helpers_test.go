package cvm_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

const testRegion = "ap-guangzhou"

// mustStartSim starts a simulator with no quota unless opts sets one, and
// closes it when the test ends.
func mustStartSim(tb testing.TB, opts cvmsim.Options) *cvmsim.Server {
	tb.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	if opts.Regions == nil {
		opts.Regions = []string{testRegion}
	}
	srv, err := cvmsim.NewServer(opts)
	if err != nil {
		tb.Fatalf("cvmsim.NewServer: %v", err)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// scannerOptions tune mustNewScanner.
type scannerOptions struct {
	secretID, secretKey string
	rate                float64
	timeout             time.Duration
	maxInstances        int
	attempts            int
	observer            cvm.Observer
	// describe, if set, turns mixed scans on (ScannerConfig.Describe).
	describe    *cvm.Limiter
	mixedPause  time.Duration
	concurrency int
}

// mustNewScanner returns a scanner of testRegion that talks to srv through
// the official SDK, with fast retries so fault tests stay quick.
func mustNewScanner(tb testing.TB, srv *cvmsim.Server, o scannerOptions) (*cvm.Scanner, *cvm.Limiter) {
	tb.Helper()
	if o.secretID == "" {
		o.secretID, o.secretKey = cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey
	}
	if o.rate == 0 {
		o.rate = 10000
	}
	client, err := cvm.NewClient(cvm.ClientConfig{
		Region:         testRegion,
		Endpoint:       srv.URL(),
		Credential:     common.NewCredential(o.secretID, o.secretKey),
		RequestTimeout: o.timeout,
	})
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	lim := cvm.NewLimiter(o.rate, 1)
	s, err := cvm.NewScanner(cvm.ScannerConfig{
		Target:          watcher.Target{Account: "test", Region: testRegion},
		Client:          client,
		Limiter:         lim,
		MaxInstances:    o.maxInstances,
		Retry:           cvm.RetryPolicy{MaxAttempts: o.attempts, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer:        o.observer,
		Describe:        o.describe,
		PageConcurrency: o.concurrency,
		MixedPause:      o.mixedPause,
	})
	if err != nil {
		tb.Fatalf("NewScanner: %v", err)
	}
	return s, lim
}

// truth returns the simulator's current states of testRegion.
func truth(srv *cvmsim.Server) map[string]string {
	m := map[string]string{}
	for _, in := range srv.Instances(testRegion) {
		m[in.InstanceId] = in.InstanceState
	}
	return m
}

func observed(scan watcher.Scan) map[string]string {
	m := map[string]string{}
	for _, o := range scan.Observations {
		m[o.InstanceID] = string(o.State)
	}
	return m
}

// missedBy returns the IDs of the truth that a scan did not observe.
func missedBy(truth, seen map[string]string) []string {
	var missed []string
	for id := range truth {
		if _, ok := seen[id]; !ok {
			missed = append(missed, id)
		}
	}
	return missed
}

func intp(i int) *int { return &i }
