package cvmsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// admin sends an admin request and returns the status and body.
func admin(tb testing.TB, srv *cvmsim.Server, method, path, body string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustDecode(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}

func TestAdminInstances(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}, InstancesPerRegion: 3, Seed: 12})
	c := MustClient(t, srv, clientConfig{})
	t.Run("list", func(t *testing.T) {
		code, body := admin(t, srv, "GET", "/_sim/instances?region=ap-shanghai", "")
		var got []map[string]string
		mustDecode(t, body, &got)
		if code != 200 || len(got) != 3 || got[0]["Region"] != "ap-shanghai" || got[0]["InstanceId"] == "" || len(got[0]) != 3 {
			t.Fatalf("%d %s", code, body)
		}
		_, body = admin(t, srv, "GET", "/_sim/instances", "")
		mustDecode(t, body, &got)
		if len(got) != 6 {
			t.Fatalf("all regions: %d instances, want 6", len(got))
		}
	})
	long := "ins-" + strings.Repeat("z", 296)
	hostile := []string{"ins-a.b>*", "ins-with space", long, "ins-ümlaut", "ins-%2F"}
	t.Run("PUT creates any ID and the API returns it as is", func(t *testing.T) {
		for _, id := range hostile {
			code, body := admin(t, srv, "PUT", "/_sim/instances/"+url.PathEscape(id), `{"state":"RUNNING"}`)
			if code != http.StatusCreated {
				t.Fatalf("PUT %q: %d %s", id, code, body)
			}
			var in cvmsim.Instance
			mustDecode(t, body, &in)
			if in.InstanceId != id || in.Region != "ap-guangzhou" {
				t.Fatalf("PUT %q answered %+v", id, in)
			}
		}
		got := ids(MustStatus(t, c, statusReq(nil, i64(100))).InstanceStatusSet)
		for _, id := range hostile {
			if !slices.Contains(got, id) {
				t.Fatalf("%q missing from the API listing %q", id, got)
			}
		}
	})
	t.Run("PUT sets any state", func(t *testing.T) {
		code, body := admin(t, srv, "PUT", "/_sim/instances/"+url.PathEscape("ins-with space"), `{"state":"HIBERNATING"}`)
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		r := MustStatus(t, c, statusReq(nil, i64(100)))
		for _, s := range r.InstanceStatusSet {
			if *s.InstanceId == "ins-with space" && *s.InstanceState != "HIBERNATING" {
				t.Fatalf("state %s, want HIBERNATING", *s.InstanceState)
			}
		}
	})
	t.Run("PUT with region creates there", func(t *testing.T) {
		code, body := admin(t, srv, "PUT", "/_sim/instances/ins-shanghai1", `{"state":"STOPPED","region":"ap-shanghai","name":"n1","zone":"ap-shanghai-2","tags":[{"Key":"k","Value":"v"}]}`)
		if code != http.StatusCreated {
			t.Fatalf("%d %s", code, body)
		}
		in := srv.Instances("ap-shanghai")[0]
		if in.InstanceId != "ins-shanghai1" || in.InstanceName != "n1" || in.Zone != "ap-shanghai-2" || len(in.Tags) != 1 {
			t.Fatalf("got %+v", in)
		}
	})
	t.Run("DELETE releases", func(t *testing.T) {
		if code, body := admin(t, srv, "DELETE", "/_sim/instances/"+url.PathEscape("ins-a.b>*"), ""); code != http.StatusNoContent {
			t.Fatalf("%d %s", code, body)
		}
		if slices.Contains(instanceIDs(srv.Instances("")), "ins-a.b>*") {
			t.Fatal("released instance still listed")
		}
		if code, _ := admin(t, srv, "DELETE", "/_sim/instances/"+url.PathEscape("ins-a.b>*"), ""); code != http.StatusNotFound {
			t.Fatalf("second DELETE: %d, want 404", code)
		}
	})
	t.Run("history records every change", func(t *testing.T) {
		_, body := admin(t, srv, "GET", "/_sim/history", "")
		var h []cvmsim.Change
		mustDecode(t, body, &h)
		if !slices.EqualFunc(h, srv.History(), func(a, b cvmsim.Change) bool {
			return a.Time.Equal(b.Time) && a.Region == b.Region && a.InstanceID == b.InstanceID && a.From == b.From && a.To == b.To
		}) {
			t.Fatal("admin history differs from History()")
		}
		want := []cvmsim.Change{
			{Region: "ap-guangzhou", InstanceID: "ins-with space", From: "RUNNING", To: "HIBERNATING"},
			{Region: "ap-shanghai", InstanceID: "ins-shanghai1", From: cvmsim.Absent, To: "STOPPED"},
			{Region: "ap-guangzhou", InstanceID: "ins-a.b>*", From: "RUNNING", To: cvmsim.Absent},
		}
		tail := h[len(h)-3:]
		for i := range want {
			tail[i].Time = time.Time{}
			if tail[i] != want[i] {
				t.Fatalf("history[%d] = %+v, want %+v", i, tail[i], want[i])
			}
		}
		if !strings.Contains(string(body), `"instanceId":"ins-with space"`) {
			t.Fatalf("history JSON names: %s", body[:200])
		}
	})
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"bad JSON", "PUT", "/_sim/instances/ins-x", `{"state":`, 400},
		{"unknown field", "PUT", "/_sim/instances/ins-x", `{"state":"RUNNING","colour":"red"}`, 400},
		{"empty state", "PUT", "/_sim/instances/ins-x", `{"state":""}`, 400},
		{"ABSENT state", "PUT", "/_sim/instances/ins-x", `{"state":"ABSENT"}`, 400},
		{"unknown region", "PUT", "/_sim/instances/ins-x", `{"state":"RUNNING","region":"ap-tokyo"}`, 400},
		{"region of an existing instance", "PUT", "/_sim/instances/ins-shanghai1", `{"state":"RUNNING","region":"ap-guangzhou"}`, 400},
		{"list of an unknown region", "GET", "/_sim/instances?region=xx", "", 400},
		{"unknown admin path", "GET", "/_sim/nothing", "", 404},
	} {
		t.Run(tc.name+" is "+http.StatusText(tc.code), func(t *testing.T) {
			code, body := admin(t, srv, tc.method, tc.path, tc.body)
			var e map[string]string
			mustDecode(t, body, &e)
			if code != tc.code || e["error"] == "" {
				t.Fatalf("%d %s, want %d with an error message", code, body, tc.code)
			}
		})
	}
}

func TestAdminFaultsStatsClock(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 2})
	c := MustClient(t, srv, clientConfig{})
	code, body := admin(t, srv, "POST", "/_sim/faults", `{"kind":"error","code":"InternalError","count":1}`)
	var added struct{ ID int }
	mustDecode(t, body, &added)
	if code != http.StatusCreated || added.ID == 0 {
		t.Fatalf("%d %s", code, body)
	}
	code, body = admin(t, srv, "POST", "/_sim/faults", `{"kind":"latency","delay":"1.5s","action":"DescribeInstances"}`)
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, body)
	}
	_, body = admin(t, srv, "GET", "/_sim/faults", "")
	var list []cvmsim.FaultStatus
	mustDecode(t, body, &list)
	if len(list) != 2 || list[1].Delay != cvmsim.Duration(1500*time.Millisecond) || !strings.Contains(string(body), `"delay":"1.5s"`) {
		t.Fatalf("faults: %s", body)
	}
	if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != "InternalError" {
		t.Fatalf("fault did not fire: %v", err)
	}
	if code, _ := admin(t, srv, "DELETE", "/_sim/faults/"+itoa(list[1].ID), ""); code != http.StatusNoContent {
		t.Fatalf("DELETE fault: %d", code)
	}
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout})
	if code, _ := admin(t, srv, "DELETE", "/_sim/faults", ""); code != http.StatusNoContent || len(srv.Faults()) != 0 {
		t.Fatalf("DELETE all faults: %d, %d left", code, len(srv.Faults()))
	}
	for _, bad := range []string{`{"kind":"nonsense"}`, `{"kind":"error"}`, `{"kind":"latency"}`, `{"kind":"error","code":"X","rate":2}`, `{"kind":"error","code":"X","delay":"soon"}`} {
		if code, body := admin(t, srv, "POST", "/_sim/faults", bad); code != http.StatusBadRequest {
			t.Fatalf("POST %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, _ := admin(t, srv, "DELETE", "/_sim/faults/x", ""); code != http.StatusBadRequest {
		t.Fatalf("DELETE /_sim/faults/x: %d, want 400", code)
	}

	_, body = admin(t, srv, "GET", "/_sim/stats", "")
	var st cvmsim.Stats
	mustDecode(t, body, &st)
	if st.Requests[cvmsim.ActionDescribeInstancesStatus] != 1 || st.FaultsInjected != 1 || !strings.Contains(string(body), `"peakPerSecond"`) {
		t.Fatalf("stats %s", body)
	}

	if code, body := admin(t, srv, "POST", "/_sim/clock", `{"offset":"10m"}`); code != http.StatusOK {
		t.Fatalf("clock: %d %s", code, body)
	}
	if srv.ClockOffset() != 10*time.Minute {
		t.Fatalf("offset %v", srv.ClockOffset())
	}
	if _, err := c.DescribeInstancesStatus(statusReq(nil, nil)); sdkCode(err) != cvmsim.CodeAuthSignatureExpire {
		t.Fatalf("after clock offset: %v", err)
	}
	if code, _ := admin(t, srv, "POST", "/_sim/clock", `{}`); code != http.StatusBadRequest {
		t.Fatalf("clock without offset: %d", code)
	}
	if code, _ := admin(t, srv, "POST", "/_sim/clock", `{"offset":"-0s"}`); code != http.StatusOK || srv.ClockOffset() != 0 {
		t.Fatalf("reset clock: %d %v", code, srv.ClockOffset())
	}
}

// TestAdminChurnStartsAndPauses: a server made with no churn starts churning
// when POST /_sim/churn sets a rate, and starts no operation once it is set
// back to 0.
func TestAdminChurnStartsAndPauses(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 50})
	if code, body := admin(t, srv, "GET", "/_sim/churn", ""); code != http.StatusOK || string(body) != "{\"rate\":0}\n" {
		t.Fatalf("GET churn: %d %s", code, body)
	}
	if code, body := admin(t, srv, "POST", "/_sim/churn", `{"rate":100}`); code != http.StatusOK {
		t.Fatalf("POST churn: %d %s", code, body)
	}
	for deadline := time.Now().Add(10 * time.Second); len(srv.Operations()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no churn operation within 10s of setting the rate")
		}
	}
	if code, body := admin(t, srv, "POST", "/_sim/churn", `{"rate":0}`); code != http.StatusOK || srv.Churn() != 0 {
		t.Fatalf("pause churn: %d %s, rate %v", code, body, srv.Churn())
	}
	n := len(srv.Operations())
	time.Sleep(500 * time.Millisecond) // five ticks of the engine
	if got := len(srv.Operations()); got != n {
		t.Fatalf("operations = %d after the pause, want %d", got, n)
	}
	for _, bad := range []string{`{}`, `{"rate":-1}`, `{"rate":"fast"}`} {
		if code, body := admin(t, srv, "POST", "/_sim/churn", bad); code != http.StatusBadRequest {
			t.Fatalf("POST churn %s: %d %s, want 400", bad, code, body)
		}
	}
}
