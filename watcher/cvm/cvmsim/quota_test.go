package cvmsim_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

func TestQuotaThrottlesBeyondBurst(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3})
	c := MustClient(t, srv, clientConfig{})
	const workers, each = 10, 12
	var mu sync.Mutex
	var ok, throttled int
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := c.DescribeInstancesStatus(statusReq(nil, nil))
				mu.Lock()
				switch code := sdkCode(err); code {
				case "":
					ok++
				case cvmsim.CodeRequestLimitExceeded:
					throttled++
				default:
					t.Errorf("code %q", code)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if max := 40 + int(40*elapsed.Seconds()) + 1; ok > max {
		t.Fatalf("%d requests succeeded in %v, quota allows at most %d", ok, elapsed, max)
	}
	if ok < 40 {
		t.Fatalf("only %d of the first 40 (the burst) succeeded", ok)
	}
	if elapsed < 2*time.Second && throttled == 0 {
		t.Fatalf("%d requests in %v, none throttled", workers*each, elapsed)
	}
	t.Run("other action has its own bucket", func(t *testing.T) {
		if _, err := c.DescribeInstances(cvm.NewDescribeInstancesRequest()); err != nil {
			t.Fatalf("DescribeInstances: %v", err)
		}
	})
	st := srv.Stats()
	if got := st.Throttled; got != int64(throttled) {
		t.Fatalf("Stats.Throttled = %d, want %d", got, throttled)
	}
	if got := st.Requests[cvmsim.ActionDescribeInstancesStatus]; got != workers*each {
		t.Fatalf("Stats.Requests[status] = %d, want %d", got, workers*each)
	}
	if got := st.Requests[cvmsim.ActionDescribeInstances]; got != 1 {
		t.Fatalf("Stats.Requests[instances] = %d, want 1", got)
	}
	if elapsed < time.Second && st.PeakPerSecond < workers*each {
		t.Fatalf("PeakPerSecond = %d, want %d (all within %v)", st.PeakPerSecond, workers*each, elapsed)
	}
}

func TestQuotaIsPerSecretID(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{RateLimit: 0.1, Burst: 2, Credentials: map[string]string{"AKIDa": "a", "AKIDb": "b"}})
	a := MustClient(t, srv, clientConfig{secretID: "AKIDa", secretKey: "a"})
	b := MustClient(t, srv, clientConfig{secretID: "AKIDb", secretKey: "b"})
	for i := 0; i < 2; i++ {
		if _, err := a.DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
			t.Fatalf("a %d: %v", i, err)
		}
	}
	if _, err := a.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != cvmsim.CodeRequestLimitExceeded {
		t.Fatalf("a beyond burst: %v, want RequestLimitExceeded", err)
	}
	if _, err := b.DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
		t.Fatalf("b: %v", err)
	}
}

func TestNegativeRateLimitIsUnlimited(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{RateLimit: -1})
	c := MustClient(t, srv, clientConfig{method: "GET"})
	for i := 0; i < 120; i++ {
		if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := srv.Stats().Throttled; got != 0 {
		t.Fatalf("Throttled = %d, want 0", got)
	}
}

func TestAuthIsCheckedBeforeQuota(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{RateLimit: 1, Burst: 1})
	bad := MustClient(t, srv, clientConfig{secretID: cvmsim.DefaultSecretID, secretKey: "wrong"})
	for i := 0; i < 5; i++ {
		if _, err := bad.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != cvmsim.CodeAuthSignatureFailure {
			t.Fatalf("bad %d: %v", i, err)
		}
	}
	if _, err := MustClient(t, srv, clientConfig{}).DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
		t.Fatalf("good request after failed ones: %v", err)
	}
}
