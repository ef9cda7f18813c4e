package cvm_test

import (
	"math"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// TestScanErrorsSlowTheLimiter checks, through the official SDK against the
// simulator, what each kind of failed request does to the shared limiter.
// The target fits on one page, so the requests run one after the other and
// the final rate is exact: ceiling x the factor per failure, plus one
// success step (ceiling/50) for the page that finally succeeded.
func TestScanErrorsSlowTheLimiter(t *testing.T) {
	const ceiling = 1000.0
	const step = ceiling / 50
	tests := []struct {
		name  string
		fault cvmsim.Fault
		want  float64
	}{
		{name: "internal errors take a tenth off each",
			fault: cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Count: 3},
			want:  ceiling*0.9*0.9*0.9 + step},
		{name: "service unavailable takes a tenth off each",
			fault: cvmsim.Fault{Kind: cvmsim.FaultError, Code: "ServiceUnavailable", Count: 3},
			want:  ceiling*0.9*0.9*0.9 + step},
		{name: "gateway 502 takes a tenth off each",
			fault: cvmsim.Fault{Kind: cvmsim.FaultHTML502, Count: 3},
			want:  ceiling*0.9*0.9*0.9 + step},
		{name: "timeout takes a tenth off",
			fault: cvmsim.Fault{Kind: cvmsim.FaultTimeout, Count: 1},
			want:  ceiling*0.9 + step},
		{name: "throttling still halves",
			fault: cvmsim.Fault{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded", Count: 3},
			want:  ceiling*0.5*0.5*0.5 + step},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 50})
			srv.AddFault(tt.fault)
			s, lim := mustNewScanner(t, srv, scannerOptions{rate: ceiling, attempts: 5, timeout: 200 * time.Millisecond})
			scan, err := s.Scan(t.Context())
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if got, want := scan.Stats.Retries, tt.fault.Count; got != want {
				t.Fatalf("retries = %d, want %d: the fault did not fire as planned", got, want)
			}
			if got := lim.Rate(); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("limiter rate = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestScanServerErrorStormSlowsTheLimiter: a page that fails on every
// attempt leaves the shared rate lowered for every worker and target that
// shares it, not only for the worker that backed off.
func TestScanServerErrorStormSlowsTheLimiter(t *testing.T) {
	const ceiling = 1000.0
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 50})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalServerError"})
	s, lim := mustNewScanner(t, srv, scannerOptions{rate: ceiling, attempts: 8})
	if _, err := s.Scan(t.Context()); err == nil {
		t.Fatal("scan under a 5xx storm succeeded")
	}
	if got, want := lim.Rate(), ceiling*math.Pow(0.9, 8); math.Abs(got-want) > 1e-9 {
		t.Fatalf("limiter rate after 8 server errors = %v, want %v", got, want)
	}
}

// TestScanRequestErrorsLeaveTheLimiterAlone: auth failures and rejected
// requests say nothing about the API's health.
func TestScanRequestErrorsLeaveTheLimiterAlone(t *testing.T) {
	const ceiling = 1000.0
	for _, code := range []string{"AuthFailure.SignatureFailure", "InvalidParameterValue", "Internal Error"} {
		t.Run(code, func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 50})
			srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: code})
			s, lim := mustNewScanner(t, srv, scannerOptions{rate: ceiling, attempts: 5})
			if _, err := s.Scan(t.Context()); err == nil {
				t.Fatalf("scan answered %s succeeded", code)
			}
			if got := lim.Rate(); got != ceiling {
				t.Errorf("limiter rate = %v after %s, want %v", got, code, ceiling)
			}
		})
	}
}
