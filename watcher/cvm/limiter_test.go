package cvm_test

import (
	"math"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

func TestLimiterSlowsLessOnServerErrorsThanOnThrottling(t *testing.T) {
	l := cvm.NewLimiter(40, 1)
	for i, want := range []float64{36, 32.4, 29.16} {
		l.Failed()
		if got := l.Rate(); math.Abs(got-want) > 1e-9 {
			t.Fatalf("rate after %d server errors = %v, want %v", i+1, got, want)
		}
	}

	failed, throttled := cvm.NewLimiter(40, 1), cvm.NewLimiter(40, 1)
	for n := 1; n <= 5; n++ {
		failed.Failed()
		throttled.Throttled()
		if failed.Rate() <= throttled.Rate() {
			t.Fatalf("after %d errors: rate %v on server errors, %v on throttling; want server errors to slow less",
				n, failed.Rate(), throttled.Rate())
		}
	}
}

func TestLimiterServerErrorsStopAtTheFloorAndRecover(t *testing.T) {
	l := cvm.NewLimiter(40, 1)
	for range 100 {
		l.Failed()
	}
	if got, want := l.Rate(), 0.5; got != want {
		t.Fatalf("rate after a storm of server errors = %v, want floor %v", got, want)
	}
	for range 1000 {
		l.Succeeded()
	}
	if got, want := l.Rate(), 40.0; got != want {
		t.Fatalf("rate after successes = %v, want ceiling %v", got, want)
	}
}

func TestLimiterThrottlingAndServerErrorsCompose(t *testing.T) {
	l := cvm.NewLimiter(40, 1)
	l.Throttled() // 20
	l.Failed()    // 18
	l.Succeeded() // 18.8
	if got, want := l.Rate(), 18.8; math.Abs(got-want) > 1e-9 {
		t.Fatalf("rate = %v, want %v", got, want)
	}
}

func TestLimiterBelowTheFloorNeverSlows(t *testing.T) {
	l := cvm.NewLimiter(0.2, 1)
	l.Failed()
	l.Throttled()
	if got, want := l.Rate(), 0.2; got != want {
		t.Fatalf("rate of a 0.2 req/s limiter after errors = %v, want it kept at %v", got, want)
	}
}
