package cvmsim_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

func intp(v int) *int { return &v }

func TestFaultError(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}, InstancesPerRegion: 150, RateLimit: -1})
	c := MustClient(t, srv, clientConfig{})
	t.Run("fires Count times then stops", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Count: 2})
		for i, want := range []string{"InternalError", "InternalError", ""} {
			if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != want {
				t.Fatalf("request %d: %v, want %q", i, err, want)
			}
		}
		if n := len(srv.Faults()); n != 0 {
			t.Fatalf("%d faults still active, want 0", n)
		}
	})
	t.Run("any code, even an auth code", func(t *testing.T) {
		id := srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "AuthFailure.SignatureFailure"})
		defer srv.RemoveFault(id)
		if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != "AuthFailure.SignatureFailure" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("matches action, region and offset", func(t *testing.T) {
		id := srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded",
			Action: cvmsim.ActionDescribeInstancesStatus, Region: "ap-guangzhou", Offset: intp(100)})
		defer srv.RemoveFault(id)
		sh := MustClient(t, srv, clientConfig{region: "ap-shanghai"})
		for _, tc := range []struct {
			name string
			call func() error
			want string
		}{
			{"matching page", func() error { _, err := c.DescribeInstancesStatus(statusReq(i64(100), i64(100))); return err }, "RequestLimitExceeded"},
			{"other page", func() error { _, err := c.DescribeInstancesStatus(statusReq(i64(0), i64(100))); return err }, ""},
			{"no offset is offset 0", func() error { _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); return err }, ""},
			{"other region", func() error { _, err := sh.DescribeInstancesStatus(statusReq(i64(100), i64(100))); return err }, ""},
			{"other action", func() error {
				req := cvm.NewDescribeInstancesRequest()
				req.Offset = i64(100)
				_, err := c.DescribeInstances(req)
				return err
			}, ""},
		} {
			if got := sdkCode(tc.call()); got != tc.want {
				t.Fatalf("%s: code %q, want %q", tc.name, got, tc.want)
			}
		}
	})
	t.Run("rate fires a fraction", func(t *testing.T) {
		id := srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Rate: 0.5})
		defer srv.RemoveFault(id)
		failed := 0
		for i := 0; i < 100; i++ {
			if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
				failed++
			}
		}
		if failed < 20 || failed > 80 {
			t.Fatalf("failed %d of 100 at rate 0.5", failed)
		}
	})
	if srv.Stats().FaultsInjected < 5 {
		t.Fatalf("FaultsInjected = %d", srv.Stats().FaultsInjected)
	}
}

func TestFaultLatencyAndTimeout(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, Latency: 50 * time.Millisecond, LatencyJitter: 20 * time.Millisecond})
	c := MustClient(t, srv, clientConfig{})
	start := time.Now()
	MustStatus(t, c, statusReq(nil, nil))
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("configured latency: took %v, want >= 50ms", d)
	}
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLatency, Delay: cvmsim.Duration(300 * time.Millisecond), Count: 1})
	start = time.Now()
	MustStatus(t, c, statusReq(nil, nil))
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("latency fault: took %v, want >= 350ms", d)
	}
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout, Count: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := c.DescribeInstancesStatusWithContext(ctx, statusReq(nil, nil))
	if got, want := sdkCode(err), "ClientError.NetworkError"; got != want {
		t.Fatalf("timeout fault: code %q (%v), want %q", got, err, want)
	}
	MustStatus(t, c, statusReq(nil, nil)) // used up

	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLatency, Delay: cvmsim.Duration(time.Hour), Count: 1})
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c.DescribeInstancesStatusWithContext(ctx, statusReq(nil, nil)); sdkCode(err) != "ClientError.NetworkError" {
		t.Fatalf("cancelled during latency: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled request took %v", d)
	}
}

func TestCloseDoesNotWaitForHungRequests(t *testing.T) {
	srv, err := cvmsim.NewServer(cvmsim.Options{Latency: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout, Action: cvmsim.ActionDescribeInstances})
	c := MustClient(t, srv, clientConfig{})
	done := make(chan error, 2)
	go func() { _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); done <- err }()
	go func() { _, err := c.DescribeInstances(cvm.NewDescribeInstancesRequest()); done <- err }()
	// Both requests must be inside the server (hanging) before it closes.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st := srv.Stats()
		if st.Requests[cvmsim.ActionDescribeInstancesStatus]+st.Requests[cvmsim.ActionDescribeInstances] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the requests never reached the server: %v", st.Requests)
		}
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // the requests would hang for an hour
		t.Fatal("Close hung")
	}
	for i := 0; i < 2; i++ {
		if err := <-done; err == nil {
			t.Fatal("request to a closed server succeeded")
		}
	}
}

func TestFaultResponseShapes(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 30, Seed: 9, RateLimit: -1})
	c := MustClient(t, srv, clientConfig{})
	for _, tc := range []struct {
		kind cvmsim.FaultKind
		code string
	}{
		{cvmsim.FaultTruncated, "ClientError.ParseJsonError"},
		{cvmsim.FaultNonJSON, "ClientError.ParseJsonError"},
		// The SDK reads the body as JSON before it looks at the status,
		// so an HTML 502 surfaces as a parse error.
		{cvmsim.FaultHTML502, "ClientError.ParseJsonError"},
	} {
		t.Run(string(tc.kind)+" gives "+tc.code, func(t *testing.T) {
			srv.AddFault(cvmsim.Fault{Kind: tc.kind, Count: 1})
			_, err := c.DescribeInstancesStatus(statusReq(nil, nil))
			if got := sdkCode(err); got != tc.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tc.code)
			}
		})
	}
	t.Run("html-502 is a 502 text/html answer", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultHTML502, Count: 1})
		resp, err := http.DefaultClient.Do(rawRequest{}.build(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(body), "502 Bad Gateway") {
			t.Fatalf("got %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("empty-object gives nil Response and no error", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultEmptyObject, Count: 1})
		resp, err := c.DescribeInstancesStatus(statusReq(nil, nil))
		if err != nil || resp.Response != nil {
			t.Fatalf("err %v, Response %v; want nil, nil", err, resp.Response)
		}
	})
	t.Run("empty-response has no TotalCount and no set", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultEmptyResponse, Count: 1})
		r := MustStatus(t, c, statusReq(nil, nil))
		if r.TotalCount != nil || r.InstanceStatusSet != nil || r.RequestId == nil {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("null-fields nulls an ID and a state", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultNullFields, Count: 1})
		r := MustStatus(t, c, statusReq(nil, i64(5)))
		set := r.InstanceStatusSet
		if len(set) != 5 || set[0].InstanceId != nil || set[0].InstanceState == nil || set[1].InstanceState != nil || set[1].InstanceId == nil {
			t.Fatalf("got %v", ids(set))
		}
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultNullFields, Action: cvmsim.ActionDescribeInstances, Count: 1})
		req := cvm.NewDescribeInstancesRequest()
		resp, err := c.DescribeInstances(req)
		if err != nil || resp.Response.InstanceSet[0].InstanceId != nil || resp.Response.InstanceSet[1].InstanceState != nil {
			t.Fatalf("DescribeInstances: %v", err)
		}
	})
	t.Run("null-fields on an empty page gives a null set", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultNullFields, Count: 1})
		r, body := do(t, rawRequest{body: `{"Offset":1000}`}.build(t, srv))
		if !strings.Contains(string(body), `"InstanceStatusSet":null`) || *r.Response.TotalCount != 30 {
			t.Fatalf("got %s", body)
		}
	})
	t.Run("lying-total replaces TotalCount", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLyingTotal, TotalCount: 5000, Count: 1})
		r := MustStatus(t, c, statusReq(nil, nil))
		if *r.TotalCount != 5000 || len(r.InstanceStatusSet) != 20 {
			t.Fatalf("total %d items %d", *r.TotalCount, len(r.InstanceStatusSet))
		}
	})
	t.Run("duplicate repeats an item", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultDuplicate, Count: 1})
		got := ids(MustStatus(t, c, statusReq(nil, i64(5))).InstanceStatusSet)
		if len(got) != 6 || got[5] != got[0] {
			t.Fatalf("got %v", got)
		}
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultDuplicate, State: "STOPPING", Count: 1})
		set := MustStatus(t, c, statusReq(nil, i64(5))).InstanceStatusSet
		if len(set) != 6 || *set[5].InstanceId != *set[0].InstanceId || *set[5].InstanceState != "STOPPING" || *set[0].InstanceState == "STOPPING" {
			t.Fatalf("conflicting duplicate: got %v", ids(set))
		}
	})
	t.Run("unknown-state replaces every state", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultUnknownState, Count: 1})
		for _, s := range MustStatus(t, c, statusReq(nil, i64(5))).InstanceStatusSet {
			if *s.InstanceState != "HIBERNATING" {
				t.Fatalf("state %s", *s.InstanceState)
			}
		}
	})
	t.Run("hostile-ids adds hostile items", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultHostileIDs, Count: 1})
		r := MustStatus(t, c, statusReq(nil, i64(5)))
		got := ids(r.InstanceStatusSet)
		if *r.TotalCount != 34 || len(got) != 9 || !slices.Contains(got, "ins-a.b>*") || !slices.Contains(got, "ins-with space") ||
			!slices.Contains(got, "") || !slices.ContainsFunc(got, func(s string) bool { return len(s) == 300 }) {
			t.Fatalf("total %d, got %q", *r.TotalCount, got)
		}
	})
}

func TestFaultShiftInsertRepeatsAnItem(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 40, Seed: 10})
	c := MustClient(t, srv, clientConfig{})
	first := ids(MustStatus(t, c, statusReq(i64(0), i64(20))).InstanceStatusSet)
	historyBefore := len(srv.History())
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultShiftInsert, Offset: intp(20), Count: 1})
	r := MustStatus(t, c, statusReq(i64(20), i64(20)))
	second := ids(r.InstanceStatusSet)
	if second[0] != first[19] {
		t.Fatalf("second page starts with %s, want the repeated %s", second[0], first[19])
	}
	if *r.TotalCount != 41 {
		t.Fatalf("TotalCount = %d, want 41", *r.TotalCount)
	}
	h := srv.History()
	if len(h) != historyBefore+1 || h[len(h)-1].From != cvmsim.Absent || h[len(h)-1].To != "RUNNING" {
		t.Fatalf("history tail %+v", h[len(h)-1])
	}
	if newest := srv.Instances(region)[0].InstanceId; newest != h[len(h)-1].InstanceID {
		t.Fatalf("inserted %s is not listed first (%s)", h[len(h)-1].InstanceID, newest)
	}
}

func TestFaultShiftReleaseSkipsAnItem(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 40, Seed: 11})
	c := MustClient(t, srv, clientConfig{})
	all := instanceIDs(srv.Instances(region))
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultShiftRelease, Offset: intp(20), Count: 1})
	r := MustStatus(t, c, statusReq(i64(20), i64(20)))
	second := ids(r.InstanceStatusSet)
	if !equalStrings(second, all[21:]) {
		t.Fatalf("second page %v, want it to start at %s (skipping %s)", second[:2], all[21], all[20])
	}
	h := srv.History()
	last := h[len(h)-1]
	if last.InstanceID != all[0] || last.To != cvmsim.Absent {
		t.Fatalf("history tail %+v, want release of %s", last, all[0])
	}
	if *r.TotalCount != 39 {
		t.Fatalf("TotalCount = %d, want 39", *r.TotalCount)
	}
}
