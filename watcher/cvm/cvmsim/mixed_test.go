package cvmsim_test

import (
	"slices"
	"testing"

	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// describePage calls DescribeInstances with Offset and Limit (nil: not
// sent) and returns its IDs and TotalCount.
func describePage(tb testing.TB, c *cvm.Client, offset, limit *int64) ([]string, int64) {
	tb.Helper()
	req := cvm.NewDescribeInstancesRequest()
	req.Offset, req.Limit = offset, limit
	resp, err := c.DescribeInstances(req)
	if err != nil {
		tb.Fatalf("DescribeInstances: %v", err)
	}
	if resp.Response == nil || resp.Response.TotalCount == nil {
		tb.Fatal("DescribeInstances: no Response or TotalCount")
	}
	out := make([]string, 0, len(resp.Response.InstanceSet))
	for _, in := range resp.Response.InstanceSet {
		out = append(out, deref(in.InstanceId))
	}
	return out, *resp.Response.TotalCount
}

// TestBothActionsPageTheSameListing: a scan may read any page through
// either action, so both must list the same instances in the same order,
// with the same TotalCount, at every offset.
func TestBothActionsPageTheSameListing(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 250, Seed: 5, RateLimit: -1})
	c := MustClient(t, srv, clientConfig{})
	for off := int64(0); off < 300; off += 100 {
		status := MustStatus(t, c, statusReq(i64(off), i64(100)))
		got, total := describePage(t, c, i64(off), i64(100))
		if want := ids(status.InstanceStatusSet); !slices.Equal(got, want) {
			t.Fatalf("offset %d: DescribeInstances lists %d IDs %v..., DescribeInstancesStatus %d %v...", off, len(got), got[:min(3, len(got))], len(want), want[:min(3, len(want))])
		}
		if got, want := total, *status.TotalCount; got != want {
			t.Fatalf("offset %d: TotalCount %d, DescribeInstancesStatus says %d", off, got, want)
		}
	}
	if got, _ := describePage(t, c, nil, nil); len(got) != 20 {
		t.Fatalf("DescribeInstances without Limit listed %d, want the default 20", len(got))
	}
}

// TestDescribeInstancesHasItsOwnQuota: spending one action's quota leaves
// the other's whole, and each is enforced at its own rate.
func TestDescribeInstancesHasItsOwnQuota(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, RateLimit: 0.01, Burst: 3})
	c := MustClient(t, srv, clientConfig{})
	for i := range 3 {
		if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
			t.Fatalf("status %d: %v", i, err)
		}
	}
	if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != cvmsim.CodeRequestLimitExceeded {
		t.Fatalf("status beyond its burst: %v, want RequestLimitExceeded", err)
	}
	for i := range 3 {
		if _, err := c.DescribeInstances(cvm.NewDescribeInstancesRequest()); err != nil {
			t.Fatalf("instances %d after the status quota was spent: %v", i, err)
		}
	}
	if _, err := c.DescribeInstances(cvm.NewDescribeInstancesRequest()); sdkCode(err) != cvmsim.CodeRequestLimitExceeded {
		t.Fatalf("instances beyond its burst: %v, want RequestLimitExceeded", err)
	}
	if got, want := srv.Stats().Throttled, int64(2); got != want {
		t.Fatalf("Stats.Throttled = %d, want %d", got, want)
	}
}

// TestFaultOtherOrder lists one action oldest first, TotalCount unchanged.
func TestFaultOtherOrder(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 150, Seed: 6, RateLimit: -1})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultOtherOrder, Action: cvmsim.ActionDescribeInstances})
	c := MustClient(t, srv, clientConfig{})
	want := instanceIDs(srv.Instances(region))
	slices.Reverse(want)
	got, total := describePage(t, c, i64(0), i64(100))
	if !slices.Equal(got, want[:100]) || total != 150 {
		t.Fatalf("DescribeInstances under other-order lists %v... (TotalCount %d), want %v... (150)", got[:3], total, want[:3])
	}
	status := MustStatus(t, c, statusReq(i64(0), i64(100)))
	if got, want := ids(status.InstanceStatusSet), instanceIDs(srv.Instances(region))[:100]; !slices.Equal(got, want) {
		t.Fatal("DescribeInstancesStatus changed order under a fault of DescribeInstances")
	}
}
