package cvmsim_test

import (
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

func TestQuotaThrottlesBeyondBurst(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3})
	c := MustClient(t, srv, clientConfig{})
	const n = 80
	var ok, throttled int
	for i := 0; i < n; i++ {
		_, err := c.DescribeInstancesStatus(statusReq(nil, nil))
		switch code := sdkCode(err); code {
		case "":
			ok++
		case cvmsim.CodeRequestLimitExceeded:
			throttled++
		default:
			t.Fatalf("request %d: code %q", i, code)
		}
	}
	if ok < 40 || throttled == 0 {
		t.Fatalf("ok = %d, throttled = %d; want >= 40 ok and some throttled", ok, throttled)
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
	if got := st.Requests[cvmsim.ActionDescribeInstancesStatus]; got != n {
		t.Fatalf("Stats.Requests[status] = %d, want %d", got, n)
	}
	if got := st.Requests[cvmsim.ActionDescribeInstances]; got != 1 {
		t.Fatalf("Stats.Requests[instances] = %d, want 1", got)
	}
	if st.PeakPerSecond < 41 {
		t.Fatalf("PeakPerSecond = %d, want > 40", st.PeakPerSecond)
	}
}

func TestQuotaIsPerSecretID(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{RateLimit: 1, Burst: 2, Credentials: map[string]string{"AKIDa": "a", "AKIDb": "b"}})
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

