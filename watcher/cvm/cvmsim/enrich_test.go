package cvmsim_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

// describeByIDs calls DescribeInstances with InstanceIds, 100 per request.
func describeByIDs(tb testing.TB, c *cvm.Client, ids []string) []*cvm.Instance {
	tb.Helper()
	var out []*cvm.Instance
	for len(ids) > 0 {
		n := min(len(ids), 100)
		req := cvm.NewDescribeInstancesRequest()
		req.InstanceIds = strs(ids[:n]...)
		req.Limit = i64(100)
		resp, err := c.DescribeInstances(req)
		if err != nil {
			tb.Fatalf("DescribeInstances by %d IDs: %v", n, err)
		}
		out = append(out, resp.Response.InstanceSet...)
		ids = ids[n:]
	}
	return out
}

// describeOne returns the instance id as DescribeInstances shows it.
func describeOne(tb testing.TB, c *cvm.Client, id string) *cvm.Instance {
	tb.Helper()
	set := describeByIDs(tb, c, []string{id})
	if len(set) != 1 {
		tb.Fatalf("DescribeInstances %s: %d items, want 1", id, len(set))
	}
	return set[0]
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func derefs(ps []*string) []string {
	if ps == nil {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = deref(p)
	}
	return out
}

// checkInstance compares what the SDK decoded with the simulator's record,
// field by field, for every field an enricher reads.
func checkInstance(t *testing.T, got *cvm.Instance, want cvmsim.Instance) {
	t.Helper()
	id := want.InstanceId
	str := func(name string, p *string, want string) {
		t.Helper()
		if p == nil || *p != want {
			t.Fatalf("%s %s = %s, want %q", id, name, deref(p), want)
		}
	}
	str("InstanceId", got.InstanceId, want.InstanceId)
	str("InstanceState", got.InstanceState, want.InstanceState)
	str("InstanceName", got.InstanceName, want.InstanceName)
	str("InstanceType", got.InstanceType, want.InstanceType)
	str("InstanceChargeType", got.InstanceChargeType, want.InstanceChargeType)
	str("RestrictState", got.RestrictState, want.RestrictState)
	str("IsolatedSource", got.IsolatedSource, want.IsolatedSource)
	str("CreatedTime", got.CreatedTime, want.CreatedTime.UTC().Format("2006-01-02T15:04:05Z"))
	if got.Placement == nil {
		t.Fatalf("%s: no Placement", id)
	}
	str("Placement.Zone", got.Placement.Zone, want.Zone)
	if g, w := derefs(got.PrivateIpAddresses), want.PrivateIpAddresses; !slices.Equal(g, w) || len(g) == 0 {
		t.Fatalf("%s PrivateIpAddresses = %v, want %v", id, g, w)
	}
	if g, w := derefs(got.PublicIpAddresses), want.PublicIpAddresses; !slices.Equal(g, w) || (g == nil) != (w == nil) {
		t.Fatalf("%s PublicIpAddresses = %v, want %v (nil: null)", id, g, w)
	}
	if want.ExpiredTime.IsZero() {
		if got.ExpiredTime != nil {
			t.Fatalf("%s (%s) ExpiredTime = %s, want null", id, want.InstanceChargeType, *got.ExpiredTime)
		}
	} else {
		str("ExpiredTime", got.ExpiredTime, want.ExpiredTime.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if len(got.Tags) != len(want.Tags) {
		t.Fatalf("%s: %d tags, want %d", id, len(got.Tags), len(want.Tags))
	}
	for i, tag := range got.Tags {
		if tag == nil || deref(tag.Key) != want.Tags[i].Key || deref(tag.Value) != want.Tags[i].Value {
			t.Fatalf("%s tag %d = %v, want %v", id, i, tag, want.Tags[i])
		}
	}
	opt := func(name string, p *string, want string) {
		t.Helper()
		if want == "" {
			if p != nil {
				t.Fatalf("%s %s = %q, want null", id, name, *p)
			}
			return
		}
		str(name, p, want)
	}
	opt("LatestOperation", got.LatestOperation, want.LatestOperation)
	opt("LatestOperationState", got.LatestOperationState, want.LatestOperationState)
	opt("LatestOperationRequestId", got.LatestOperationRequestId, want.LatestOperationRequestId)
	opt("LatestOperationErrorMsg", got.LatestOperationErrorMsg, want.LatestOperationErrorMsg)
}

func TestDescribeInstancesEnrichmentFieldsByPageAndByIDs(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}, InstancesPerRegion: 230, Seed: 21, RateLimit: -1})
	for _, r := range []string{"ap-guangzhou", "ap-shanghai"} {
		want := srv.Instances(r)
		c := MustClient(t, srv, clientConfig{region: r})
		var paged []*cvm.Instance
		for off := int64(0); off < int64(len(want)); off += 100 {
			req := cvm.NewDescribeInstancesRequest()
			req.Offset, req.Limit = i64(off), i64(100)
			resp, err := c.DescribeInstances(req)
			if err != nil {
				t.Fatalf("%s page at %d: %v", r, off, err)
			}
			paged = append(paged, resp.Response.InstanceSet...)
		}
		ids := instanceIDs(want)
		slices.Reverse(ids) // any order in
		byIDs := map[string]*cvm.Instance{}
		for _, in := range describeByIDs(t, c, ids) {
			byIDs[deref(in.InstanceId)] = in
		}
		if len(paged) != len(want) || len(byIDs) != len(want) {
			t.Fatalf("%s: %d paged, %d by IDs, want %d", r, len(paged), len(byIDs), len(want))
		}
		zones, types, charges, tagCounts := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[int]bool{}
		public := map[bool]bool{}
		for i := range want {
			checkInstance(t, paged[i], want[i])
			if byIDs[want[i].InstanceId] == nil {
				t.Fatalf("%s missing from the answers by IDs", want[i].InstanceId)
			}
			checkInstance(t, byIDs[want[i].InstanceId], want[i])
			zones[want[i].Zone] = true
			types[want[i].InstanceType] = true
			charges[want[i].InstanceChargeType] = true
			tagCounts[len(want[i].Tags)] = true
			public[want[i].PublicIpAddresses != nil] = true
			if !strings.HasPrefix(want[i].Zone, r+"-") {
				t.Fatalf("%s: zone %s is not of region %s", want[i].InstanceId, want[i].Zone, r)
			}
		}
		// The seeded fleet is varied enough to exercise an enricher.
		if len(zones) < 3 || len(types) < 4 || !charges["PREPAID"] || !charges["POSTPAID_BY_HOUR"] || !public[true] || !public[false] {
			t.Fatalf("%s: too little variety: zones %v types %v charges %v public %v", r, zones, types, charges, public)
		}
		for n := 0; n <= 5; n++ {
			if !tagCounts[n] {
				t.Fatalf("%s: no instance with %d tags (counts %v)", r, n, tagCounts)
			}
		}
	}
}

func TestOperateSetsLatestOperationThenSuccess(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 5, Seed: 22, RateLimit: -1})
	c := MustClient(t, srv, clientConfig{})
	var running cvmsim.Instance
	for _, in := range srv.Instances(region) {
		if in.InstanceState == cvmsim.StateRunning {
			running = in
			break
		}
	}
	if running.InstanceId == "" {
		t.Fatal("no RUNNING instance in the seeded fleet")
	}
	before := describeOne(t, c, running.InstanceId)
	rid, err := srv.Operate(running.InstanceId, cvmsim.ActionStopInstances, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if rid == deref(before.LatestOperationRequestId) || len(rid) != 36 {
		t.Fatalf("request id %q is not a fresh UUID (previous %s)", rid, deref(before.LatestOperationRequestId))
	}
	mid := describeOne(t, c, running.InstanceId)
	if got, want := deref(mid.InstanceState), cvmsim.StateStopping; got != want {
		t.Fatalf("state during the operation = %s, want %s", got, want)
	}
	if deref(mid.LatestOperation) != "StopInstances" || deref(mid.LatestOperationState) != "OPERATING" ||
		deref(mid.LatestOperationRequestId) != rid || mid.LatestOperationErrorMsg != nil {
		t.Fatalf("during: operation %s %s %s err %s", deref(mid.LatestOperation), deref(mid.LatestOperationState),
			deref(mid.LatestOperationRequestId), deref(mid.LatestOperationErrorMsg))
	}
	// STOPPING lasts 5..20 s: move the server's clock past it (within the
	// signature's five minutes of skew) instead of sleeping.
	srv.SetClockOffset(2 * time.Minute)
	after := describeOne(t, c, running.InstanceId)
	if deref(after.InstanceState) != cvmsim.StateStopped || deref(after.LatestOperationState) != "SUCCESS" ||
		deref(after.LatestOperationRequestId) != rid {
		t.Fatalf("after: %s %s %s", deref(after.InstanceState), deref(after.LatestOperationState), deref(after.LatestOperationRequestId))
	}
	var attributed []string
	for _, ch := range srv.History() {
		if ch.InstanceID == running.InstanceId && ch.RequestID != "" {
			if ch.RequestID != rid || ch.Operation != "StopInstances" {
				t.Fatalf("change %+v attributed to another operation", ch)
			}
			attributed = append(attributed, ch.From+">"+ch.To)
		}
	}
	if want := []string{"RUNNING>STOPPING", "STOPPING>STOPPED"}; !slices.Equal(attributed, want) {
		t.Fatalf("attributed changes %v, want %v", attributed, want)
	}
	ops := srv.Operations()
	if len(ops) != 1 || ops[0].RequestID != rid || ops[0].Actor != "alice" || ops[0].State != "SUCCESS" ||
		ops[0].InstanceID != running.InstanceId || ops[0].Region != region || !ops[0].Audited {
		t.Fatalf("operations %+v", ops)
	}
}

func TestUpdateNameTagsStateAndOperation(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, Seed: 23, RateLimit: -1})
	c := MustClient(t, srv, clientConfig{})
	in := srv.Instances(region)[0]
	history := len(srv.History())
	name := "web-01"
	tags := []cvmsim.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "web"}}

	t.Run("name and tags change without a state change", func(t *testing.T) {
		got, err := srv.Update(in.InstanceId, cvmsim.Update{Name: &name, Tags: &tags})
		if err != nil {
			t.Fatal(err)
		}
		d := describeOne(t, c, in.InstanceId)
		if deref(d.InstanceName) != name || len(d.Tags) != 2 || deref(d.Tags[1].Value) != "web" {
			t.Fatalf("name %s tags %v", deref(d.InstanceName), d.Tags)
		}
		if deref(d.LatestOperationRequestId) != in.LatestOperationRequestId || got.InstanceState != in.InstanceState {
			t.Fatalf("operation or state changed: %s %s", deref(d.LatestOperationRequestId), got.InstanceState)
		}
		if n := len(srv.History()); n != history {
			t.Fatalf("history grew from %d to %d", history, n)
		}
		empty := []cvmsim.Tag{}
		if _, err := srv.Update(in.InstanceId, cvmsim.Update{Tags: &empty}); err != nil {
			t.Fatal(err)
		}
		if d := describeOne(t, c, in.InstanceId); len(d.Tags) != 0 || d.Tags == nil {
			t.Fatalf("tags after removing all = %v, want []", d.Tags)
		}
	})
	t.Run("a state without an operation leaves LatestOperation alone", func(t *testing.T) {
		if _, err := srv.Update(in.InstanceId, cvmsim.Update{State: "STOPPED"}); err != nil {
			t.Fatal(err)
		}
		d := describeOne(t, c, in.InstanceId)
		if deref(d.InstanceState) != "STOPPED" || deref(d.LatestOperationRequestId) != in.LatestOperationRequestId ||
			deref(d.LatestOperation) != in.LatestOperation {
			t.Fatalf("state %s operation %s %s", deref(d.InstanceState), deref(d.LatestOperation), deref(d.LatestOperationRequestId))
		}
		h := srv.History()
		if last := h[len(h)-1]; last.To != "STOPPED" || last.RequestID != "" || last.Operation != "" {
			t.Fatalf("last change %+v: want unattributed", last)
		}
	})
	var rid string
	t.Run("an operation into a transitional state is OPERATING, then moved on", func(t *testing.T) {
		got, err := srv.Update(in.InstanceId, cvmsim.Update{State: "STARTING", Operation: "StartInstances", Actor: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		rid = got.LatestOperationRequestId
		if rid == "" || rid == in.LatestOperationRequestId || got.LatestOperationState != "OPERATING" {
			t.Fatalf("operation %+v", got)
		}
		if _, err := srv.Update(in.InstanceId, cvmsim.Update{State: "RUNNING", OperationState: "SUCCESS"}); err != nil {
			t.Fatal(err)
		}
		d := describeOne(t, c, in.InstanceId)
		if deref(d.InstanceState) != "RUNNING" || deref(d.LatestOperationState) != "SUCCESS" || deref(d.LatestOperationRequestId) != rid {
			t.Fatalf("after: %s %s %s", deref(d.InstanceState), deref(d.LatestOperationState), deref(d.LatestOperationRequestId))
		}
		h := srv.History()
		for _, ch := range h[len(h)-2:] {
			if ch.RequestID != rid || ch.Operation != "StartInstances" {
				t.Fatalf("change %+v not attributed to %s", ch, rid)
			}
		}
	})
	t.Run("a failed operation leaves the state and carries its message", func(t *testing.T) {
		got, err := srv.Update(in.InstanceId, cvmsim.Update{Operation: "StopInstances", OperationError: "guest did not answer"})
		if err != nil {
			t.Fatal(err)
		}
		d := describeOne(t, c, in.InstanceId)
		if deref(d.InstanceState) != "RUNNING" || deref(d.LatestOperationState) != "FAILED" ||
			deref(d.LatestOperationErrorMsg) != "guest did not answer" || deref(d.LatestOperationRequestId) != got.LatestOperationRequestId ||
			got.LatestOperationRequestId == rid {
			t.Fatalf("failed: %s %s %s %s", deref(d.InstanceState), deref(d.LatestOperationState), deref(d.LatestOperationErrorMsg), deref(d.LatestOperationRequestId))
		}
		ops := srv.Operations()
		last := ops[len(ops)-1]
		if last.State != "FAILED" || last.Error != "guest did not answer" || last.Actor != cvmsim.DefaultActor {
			t.Fatalf("recorded %+v", last)
		}
	})
	t.Run("invalid updates", func(t *testing.T) {
		for _, u := range []cvmsim.Update{
			{State: cvmsim.Absent},
			{OperationState: "DONE"},
			{Actor: "eve"},
			{Operation: "StopInstances", OperationState: "SUCCESS", OperationError: "x"},
		} {
			if _, err := srv.Update(in.InstanceId, u); err == nil {
				t.Fatalf("Update(%+v) succeeded", u)
			}
		}
		if _, err := srv.Update(srv.NewInstanceID(), cvmsim.Update{State: "RUNNING"}); err == nil {
			t.Fatal("Update of an unknown instance succeeded")
		}
	})
}

func TestDescribeInstancesEnrichmentFaults(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 4, Seed: 24, RateLimit: -1})
	c := MustClient(t, srv, clientConfig{})
	ids := instanceIDs(srv.Instances(region))
	only := func(f cvmsim.Fault) func() {
		f.Action = cvmsim.ActionDescribeInstances
		id := srv.AddFault(f)
		return func() { srv.RemoveFault(id) }
	}
	t.Run("missing permission denies DescribeInstances only", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultError, Code: cvmsim.CodeAuthUnauthorizedOperation})()
		_, err := c.DescribeInstances(cvm.NewDescribeInstancesRequest())
		if got := sdkCode(err); got != cvmsim.CodeAuthUnauthorizedOperation || !strings.Contains(err.Error(), "cvm:DescribeInstances") {
			t.Fatalf("code %q: %v", got, err)
		}
		if got := *MustStatus(t, c, statusReq(nil, nil)).TotalCount; got != 4 {
			t.Fatalf("DescribeInstancesStatus TotalCount %d, want 4", got)
		}
	})
	t.Run("null details", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultNullDetails})()
		for _, in := range describeByIDs(t, c, ids) {
			if in.InstanceId == nil || in.InstanceState == nil {
				t.Fatal("null-details nulled the ID or the state")
			}
			if in.InstanceName != nil || in.Placement != nil || in.InstanceType != nil || in.PrivateIpAddresses != nil ||
				in.CreatedTime != nil || in.RestrictState != nil || in.IsolatedSource != nil || in.LatestOperation != nil ||
				in.LatestOperationRequestId != nil || in.InstanceChargeType != nil {
				t.Fatalf("%s: a descriptive field is not null", *in.InstanceId)
			}
			if len(in.Tags) != 2 || in.Tags[0] != nil || in.Tags[1] == nil || in.Tags[1].Value != nil {
				t.Fatalf("%s: tags %v, want [null, {env null}]", *in.InstanceId, in.Tags)
			}
		}
	})
	t.Run("hostile values", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultHostileValues})()
		set := describeByIDs(t, c, ids)
		var long, nul, esc, replaced bool
		for _, in := range set {
			if len(in.Tags) < 60 || !strings.HasPrefix(deref(in.InstanceName), "\x1b[2J") {
				t.Fatalf("%s: %d tags, name %q", deref(in.InstanceId), len(in.Tags), deref(in.InstanceName))
			}
			for _, tag := range in.Tags {
				v := deref(tag.Value)
				long = long || len(v) >= 10000
				nul = nul || strings.Contains(v, "\x00")
				esc = esc || strings.Contains(v, "\x1b[31m")
				replaced = replaced || strings.Contains(v, "\ufffd")
			}
		}
		if !long || !nul || !esc || !replaced {
			t.Fatalf("hostile tags missing: long %v nul %v escape %v invalid-UTF-8 %v", long, nul, esc, replaced)
		}
		if d := describeOne(t, MustClient(t, srv, clientConfig{method: "GET"}), ids[0]); len(d.Tags) < 60 {
			t.Fatalf("GET: %d tags", len(d.Tags))
		}
	})
	// The faults changed answers, never the fleet.
	for _, in := range describeByIDs(t, c, ids) {
		if len(in.Tags) >= 60 || in.InstanceName == nil {
			t.Fatalf("%s kept a fault's values", deref(in.InstanceId))
		}
	}
}
