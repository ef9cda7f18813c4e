package cvmsim_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
)

// The cloudaudit module of the SDK does not resolve with the pinned common,
// so LookUpEvents goes through the SDK's common client, which signs it
// exactly as the generated clients do (service "cloudaudit").

// auditEvent and auditResponse decode LookUpEvents' answer in the shapes of
// the SDK's cloudaudit/v20190319 Event and LookUpEventsResponseParams.
type auditEvent struct {
	EventId         *string
	Username        *string
	EventTime       *string
	CloudAuditEvent *string
	ErrorCode       *int64
	EventName       *string
	SecretId        *string
	EventSource     *string
	RequestID       *string
	ResourceRegion  *string
	AccountID       *int64
	SourceIPAddress *string
	Resources       *struct{ ResourceType, ResourceName *string }
	EventRegion     *string
}

type auditResponse struct {
	NextToken  *string
	Events     []*auditEvent
	ListOver   *bool
	TotalCount *uint64
	RequestId  *string
}

// mustAuditClient returns the SDK's common client pointed at srv.
func mustAuditClient(tb testing.TB, srv *cvmsim.Server, timeout int) *common.Client {
	tb.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = srv.Endpoint()
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = timeout
	cpf.DisableRegionBreaker = true
	return common.NewCommonClient(common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey), region, cpf)
}

// lookUp calls LookUpEvents with params.
func lookUp(c *common.Client, params map[string]any) (*auditResponse, error) {
	req := tchttp.NewCommonRequest("cloudaudit", cvmsim.AuditVersion, cvmsim.ActionLookUpEvents)
	if err := req.SetActionParameters(params); err != nil {
		return nil, err
	}
	resp := tchttp.NewCommonResponse()
	if err := c.Send(req, resp); err != nil {
		return nil, err
	}
	var out struct{ Response auditResponse } // GetBody is the whole answer
	if err := json.Unmarshal(resp.GetBody(), &out); err != nil {
		return nil, err
	}
	return &out.Response, nil
}

// byRequestID are LookUpEvents parameters for one request ID over the last
// hour and the next (the server clock may run ahead).
func byRequestID(rid string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"StartTime": now - 3600, "EndTime": now + 3600,
		"LookupAttributes": []any{map[string]any{"AttributeKey": "RequestId", "AttributeValue": rid}},
	}
}

func mustLookUp(tb testing.TB, c *common.Client, params map[string]any) *auditResponse {
	tb.Helper()
	r, err := lookUp(c, params)
	if err != nil {
		tb.Fatalf("LookUpEvents: %v", err)
	}
	return r
}

func firstRunning(tb testing.TB, srv *cvmsim.Server) string {
	tb.Helper()
	for _, in := range srv.Instances(region) {
		if in.InstanceState == cvmsim.StateRunning {
			return in.InstanceId
		}
	}
	tb.Fatal("no RUNNING instance")
	return ""
}

func TestLookUpEventsFindsTheOperationByRequestID(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 5, Seed: 31})
	c := mustAuditClient(t, srv, 10)
	id := firstRunning(t, srv)
	rid, err := srv.Operate(id, cvmsim.ActionRebootInstances, "ops-bot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Operate(srv.Instances(region)[0].InstanceId, "ResetInstance", "someone-else"); err != nil {
		t.Fatal(err)
	}
	r := mustLookUp(t, c, byRequestID(rid))
	if len(r.Events) != 1 || r.ListOver == nil || !*r.ListOver || r.TotalCount == nil || *r.TotalCount != 1 {
		t.Fatalf("events %d listOver %v total %v, want 1 event, list over", len(r.Events), r.ListOver, r.TotalCount)
	}
	e := r.Events[0]
	op := srv.Operations()[0]
	for _, f := range []struct{ name, got, want string }{
		{"RequestID", deref(e.RequestID), rid},
		{"Username", deref(e.Username), "ops-bot"},
		{"EventName", deref(e.EventName), "RebootInstances"},
		{"SourceIPAddress", deref(e.SourceIPAddress), op.SourceIP},
		{"ResourceRegion", deref(e.ResourceRegion), region},
		{"EventRegion", deref(e.EventRegion), region},
		{"EventId", deref(e.EventId), op.EventID},
		{"EventSource", deref(e.EventSource), "cvm.tencentcloudapi.com"},
		{"Resources.ResourceName", deref(e.Resources.ResourceName), id},
		{"EventTime", deref(e.EventTime), itoa(int(op.Time.Unix()))},
	} {
		if f.got != f.want {
			t.Fatalf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	var detail map[string]any
	if e.CloudAuditEvent == nil || json.Unmarshal([]byte(*e.CloudAuditEvent), &detail) != nil || detail["requestID"] != rid {
		t.Fatalf("CloudAuditEvent %s", deref(e.CloudAuditEvent))
	}
	t.Run("an unknown request id and the initial fleet's operations are not found", func(t *testing.T) {
		unknown := []string{"00000000-0000-4000-8000-000000000000"}
		for _, in := range srv.Instances(region) {
			if in.LatestOperationState == "SUCCESS" && in.LatestOperation == "RunInstances" { // as seeded
				unknown = append(unknown, in.LatestOperationRequestId)
			}
		}
		if len(unknown) < 2 {
			t.Fatal("no instance kept its seeded operation")
		}
		for _, rid := range unknown {
			if r := mustLookUp(t, c, byRequestID(rid)); len(r.Events) != 0 || r.Events == nil || !*r.ListOver {
				t.Fatalf("%s: %d events (set %v), want []", rid, len(r.Events), r.Events)
			}
		}
	})
	t.Run("a window that excludes the operation finds nothing", func(t *testing.T) {
		p := byRequestID(rid)
		p["StartTime"], p["EndTime"] = op.Time.Unix()+1, op.Time.Unix()+60
		if r := mustLookUp(t, c, p); len(r.Events) != 0 {
			t.Fatalf("%d events", len(r.Events))
		}
	})
	t.Run("other attributes", func(t *testing.T) {
		for _, a := range [][2]string{{"EventName", "RebootInstances"}, {"ResourceId", id}, {"PrincipalId", "ops-bot"}} {
			p := byRequestID(rid)
			p["LookupAttributes"] = []any{map[string]any{"AttributeKey": a[0], "AttributeValue": a[1]}}
			if r := mustLookUp(t, c, p); len(r.Events) != 1 || deref(r.Events[0].RequestID) != rid {
				t.Fatalf("%s=%s: %d events", a[0], a[1], len(r.Events))
			}
		}
	})
}

func TestLookUpEventsAuditDelay(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, Seed: 32, AuditDelay: 2 * time.Minute})
	c := mustAuditClient(t, srv, 10)
	rid, err := srv.Operate(firstRunning(t, srv), cvmsim.ActionStopInstances, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r := mustLookUp(t, c, byRequestID(rid)); len(r.Events) != 0 {
		t.Fatalf("found %d events before the audit delay", len(r.Events))
	}
	srv.SetClockOffset(2*time.Minute + time.Second) // within the signature's skew
	if r := mustLookUp(t, c, byRequestID(rid)); len(r.Events) != 1 || deref(r.Events[0].Username) != "alice" {
		t.Fatalf("after the audit delay: %d events", len(r.Events))
	}
}

func TestLookUpEventsNeverFindsAnUnauditedOperation(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, Seed: 33})
	c := mustAuditClient(t, srv, 10)
	in, err := srv.Update(firstRunning(t, srv), cvmsim.Update{State: "STOPPED", Operation: "StopInstances", Unaudited: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetClockOffset(4 * time.Minute)
	if r := mustLookUp(t, c, byRequestID(in.LatestOperationRequestId)); len(r.Events) != 0 {
		t.Fatalf("an unaudited operation was found: %d events", len(r.Events))
	}
	if ops := srv.Operations(); len(ops) != 1 || ops[0].Audited {
		t.Fatalf("operations %+v", ops)
	}
}

func TestLookUpEventsPagesNewestFirst(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 25, Seed: 34, RateLimit: -1, AuditRateLimit: -1})
	c := mustAuditClient(t, srv, 10)
	var want []string
	for _, in := range srv.Instances(region) {
		rid, err := srv.Operate(in.InstanceId, "ModifyInstancesAttribute", "pager")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rid)
	}
	slices.Reverse(want) // newest first
	p := byRequestID("")
	p["LookupAttributes"] = []any{map[string]any{"AttributeKey": "EventName", "AttributeValue": "ModifyInstancesAttribute"}}
	p["MaxResults"] = 10
	var got []string
	for page := 0; ; page++ {
		if page > 3 {
			t.Fatal("paging does not end")
		}
		r := mustLookUp(t, c, p)
		if r.TotalCount == nil || *r.TotalCount != 25 {
			t.Fatalf("TotalCount %v, want 25", r.TotalCount)
		}
		for _, e := range r.Events {
			got = append(got, deref(e.RequestID))
		}
		if *r.ListOver {
			if r.NextToken != nil {
				t.Fatalf("NextToken %q with ListOver", *r.NextToken)
			}
			break
		}
		if len(r.Events) != 10 || r.NextToken == nil {
			t.Fatalf("page %d: %d events, token %v", page, len(r.Events), r.NextToken)
		}
		p["NextToken"] = *r.NextToken
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %d request ids, not the %d operations newest first", len(got), len(want))
	}
}

func TestLookUpEventsParameterErrors(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 1, AuditRateLimit: -1})
	c := mustAuditClient(t, srv, 10)
	now := time.Now().Unix()
	for _, tc := range []struct {
		name   string
		params map[string]any
		code   string
	}{
		{"no StartTime", map[string]any{"EndTime": now}, cvmsim.CodeMissingParameter},
		{"no EndTime", map[string]any{"StartTime": now}, cvmsim.CodeMissingParameter},
		{"EndTime before StartTime", map[string]any{"StartTime": now, "EndTime": now - 1}, cvmsim.CodeAuditInvalidTime},
		{"more than 30 days", map[string]any{"StartTime": now - 31*86400, "EndTime": now}, cvmsim.CodeAuditOverTime},
		{"MaxResults 51", map[string]any{"StartTime": now, "EndTime": now, "MaxResults": 51}, cvmsim.CodeAuditInvalidMaxResult},
		{"MaxResults 0", map[string]any{"StartTime": now, "EndTime": now, "MaxResults": 0}, cvmsim.CodeAuditInvalidMaxResult},
		{"unknown attribute key", map[string]any{"StartTime": now, "EndTime": now,
			"LookupAttributes": []any{map[string]any{"AttributeKey": "Colour", "AttributeValue": "red"}}}, cvmsim.CodeAuditInvalidAttributeKey},
		{"bad mode", map[string]any{"StartTime": now, "EndTime": now, "Mode": "turbo"}, cvmsim.CodeInvalidParameterValue},
		{"bad token", map[string]any{"StartTime": now, "EndTime": now, "NextToken": "x"}, cvmsim.CodeInvalidParameterValue},
		{"unknown parameter", map[string]any{"StartTime": now, "EndTime": now, "Bogus": 1}, cvmsim.CodeUnknownParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lookUp(c, tc.params)
			if got := sdkCode(err); got != tc.code {
				t.Fatalf("code = %q, want %q", got, tc.code)
			}
		})
	}
	t.Run("the credential scope must name cloudaudit", func(t *testing.T) {
		r, body := do(t, rawRequest{action: cvmsim.ActionLookUpEvents, version: cvmsim.AuditVersion, scopeService: "cvm",
			body: `{"StartTime":1,"EndTime":2}`}.build(t, srv))
		if got, want := r.errCode(), cvmsim.CodeAuthSignatureFailure; got != want {
			t.Fatalf("code = %q, want %q: %s", got, want, body)
		}
		r, body = do(t, rawRequest{action: cvmsim.ActionLookUpEvents, version: cvmsim.AuditVersion, scopeService: "cloudaudit",
			body: `{"StartTime":1,"EndTime":2}`}.build(t, srv))
		if r.errCode() != "" {
			t.Fatalf("signed for cloudaudit: %s", body)
		}
	})
}

func TestLookUpEventsHasItsOwnQuota(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 1, AuditRateLimit: 1})
	c := mustAuditClient(t, srv, 10)
	p := byRequestID("x")
	if _, err := lookUp(c, p); err != nil {
		t.Fatalf("first LookUpEvents: %v", err)
	}
	// A burst of 1 at 1 req/s: the next request within the second is over.
	_, err := lookUp(c, p)
	if got, want := sdkCode(err), cvmsim.CodeRequestLimitExceeded; got != want {
		t.Fatalf("second LookUpEvents: code %q, want %q", got, want)
	}
	if got := srv.Stats().Requests[cvmsim.ActionLookUpEvents]; got != 2 {
		t.Fatalf("Stats LookUpEvents = %d, want 2", got)
	}
	// DescribeInstances keeps its own 40 req/s bucket.
	cv := MustClient(t, srv, clientConfig{})
	if len(describeByIDs(t, cv, instanceIDs(srv.Instances(region)))) != 1 {
		t.Fatal("DescribeInstances did not answer")
	}
}

func TestLookUpEventsFaults(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, Seed: 35, AuditRateLimit: -1, RateLimit: -1})
	c := mustAuditClient(t, srv, 1)
	rid, err := srv.Operate(firstRunning(t, srv), cvmsim.ActionStopInstances, "alice")
	if err != nil {
		t.Fatal(err)
	}
	p := byRequestID(rid)
	only := func(f cvmsim.Fault) func() {
		f.Action = cvmsim.ActionLookUpEvents
		id := srv.AddFault(f)
		return func() { srv.RemoveFault(id) }
	}
	t.Run("missing permission denies LookUpEvents only", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultError, Code: cvmsim.CodeAuthUnauthorizedOperation})()
		_, err := lookUp(c, p)
		if got := sdkCode(err); got != cvmsim.CodeAuthUnauthorizedOperation {
			t.Fatalf("code %q", got)
		}
		if !strings.Contains(err.Error(), "cloudaudit:LookUpEvents") {
			t.Fatalf("message does not name the action: %v", err)
		}
		if _, err := MustClient(t, srv, clientConfig{}).DescribeInstances(nil); err != nil {
			t.Fatalf("DescribeInstances denied too: %v", err)
		}
	})
	t.Run("throttling", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultError, Code: cvmsim.CodeRequestLimitExceeded})()
		if _, err := lookUp(c, p); sdkCode(err) != cvmsim.CodeRequestLimitExceeded {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("html 502", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultHTML502})()
		if _, err := lookUp(c, p); err == nil || !strings.Contains(err.Error(), "502") {
			t.Fatalf("err %v, want a 502", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultTimeout})()
		if _, err := lookUp(c, p); err == nil || !strings.Contains(strings.ToLower(err.Error()), "timeout") {
			t.Fatalf("err %v, want a timeout", err)
		}
	})
	t.Run("null fields", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultNullFields})()
		r := mustLookUp(t, c, p)
		if len(r.Events) != 1 || r.Events[0].Username != nil || r.Events[0].Resources != nil || r.ListOver != nil ||
			r.TotalCount != nil || deref(r.Events[0].RequestID) != rid {
			t.Fatalf("events %d, listOver %v", len(r.Events), r.ListOver)
		}
		if r := mustLookUp(t, c, byRequestID("none")); r.Events != nil {
			t.Fatalf("empty set %v, want null", r.Events)
		}
	})
	t.Run("hostile values", func(t *testing.T) {
		defer only(cvmsim.Fault{Kind: cvmsim.FaultHostileValues})()
		r := mustLookUp(t, c, p)
		if len(r.Events) != 1 || deref(r.Events[0].Username) != "a.b>*" {
			t.Fatalf("%d events, want 1 with a hostile username", len(r.Events))
		}
	})
	if r := mustLookUp(t, c, p); len(r.Events) != 1 || deref(r.Events[0].Username) != "alice" {
		t.Fatal("the faults outlived their removal")
	}
}

func TestAdminOperations(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 2, Seed: 36})
	id := firstRunning(t, srv)
	code, body := admin(t, srv, "PUT", "/_sim/instances/"+id, `{"state":"STOPPED","operation":"StopInstances","actor":"carol","sourceIp":"198.51.100.7"}`)
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	var put struct{ LatestOperation, LatestOperationState, LatestOperationRequestId string }
	if err := json.Unmarshal(body, &put); err != nil || put.LatestOperationState != "SUCCESS" || put.LatestOperationRequestId == "" {
		t.Fatalf("PUT answer %s (%v)", body, err)
	}
	code, body = admin(t, srv, "GET", "/_sim/operations", "")
	var ops []cvmsim.Operation
	if err := json.Unmarshal(body, &ops); err != nil || code != http.StatusOK || len(ops) != 1 {
		t.Fatalf("GET /_sim/operations: %d %s", code, body)
	}
	if op := ops[0]; op.RequestID != put.LatestOperationRequestId || op.Actor != "carol" || op.SourceIP != "198.51.100.7" ||
		op.Action != "StopInstances" || op.InstanceID != id || op.State != "SUCCESS" {
		t.Fatalf("operation %+v", op)
	}
	code, body = admin(t, srv, "GET", "/_sim/history", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"requestId":"`+put.LatestOperationRequestId+`"`) {
		t.Fatalf("history does not attribute the change: %s", body)
	}
	c := mustAuditClient(t, srv, 10)
	if r := mustLookUp(t, c, byRequestID(put.LatestOperationRequestId)); len(r.Events) != 1 || deref(r.Events[0].Username) != "carol" {
		t.Fatalf("LookUpEvents: %d events", len(r.Events))
	}
	t.Run("name and tags without a state", func(t *testing.T) {
		code, body := admin(t, srv, "PUT", "/_sim/instances/"+id, `{"name":"renamed","tags":[{"Key":"k","Value":"v"}]}`)
		if code != http.StatusOK {
			t.Fatalf("PUT: %d %s", code, body)
		}
		d := describeOne(t, MustClient(t, srv, clientConfig{}), id)
		if deref(d.InstanceName) != "renamed" || len(d.Tags) != 1 || deref(d.InstanceState) != "STOPPED" ||
			deref(d.LatestOperationRequestId) != put.LatestOperationRequestId {
			t.Fatalf("after: %s %v %s", deref(d.InstanceName), d.Tags, deref(d.InstanceState))
		}
	})
	t.Run("create with RunInstances", func(t *testing.T) {
		nid := srv.NewInstanceID()
		code, body := admin(t, srv, "PUT", "/_sim/instances/"+nid, `{"state":"PENDING","operation":"RunInstances","actor":"dave"}`)
		if code != http.StatusCreated || !strings.Contains(string(body), `"LatestOperationState":"OPERATING"`) {
			t.Fatalf("PUT: %d %s", code, body)
		}
		h := srv.History()
		if last := h[len(h)-1]; last.InstanceID != nid || last.From != cvmsim.Absent || last.Operation != "RunInstances" || last.RequestID == "" {
			t.Fatalf("creation %+v not attributed", last)
		}
	})
	for _, bad := range []string{
		`{"operationState":"DONE"}`,
		`{"actor":"eve"}`,
		`{"zone":"ap-guangzhou-3"}`,
	} {
		if code, body := admin(t, srv, "PUT", "/_sim/instances/"+id, bad); code != http.StatusBadRequest {
			t.Fatalf("PUT %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, body := admin(t, srv, "PUT", "/_sim/instances/"+srv.NewInstanceID(), `{"name":"x"}`); code != http.StatusBadRequest {
		t.Fatalf("PUT without a state on a new instance: %d %s, want 400", code, body)
	}
}
