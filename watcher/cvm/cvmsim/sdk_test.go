package cvmsim_test

import (
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

func TestDescribeInstancesStatusPagesWholeFleet(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 250, Seed: 1, RateLimit: -1})
	want := instanceIDs(srv.Instances(region))
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			c := MustClient(t, srv, clientConfig{method: method})
			var got []string
			for off := int64(0); off < 250; off += 100 {
				r := MustStatus(t, c, statusReq(i64(off), i64(100)))
				if r.TotalCount == nil || *r.TotalCount != 250 {
					t.Fatalf("TotalCount = %v, want 250", r.TotalCount)
				}
				got = append(got, ids(r.InstanceStatusSet)...)
			}
			if !equalStrings(got, want) {
				t.Fatalf("paged IDs differ from Instances():\n got %v\nwant %v", got[:5], want[:5])
			}
		})
	}
}

func TestListingIsNewestFirstAndCreationShiftsOffsets(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 30, Seed: 2})
	c := MustClient(t, srv, clientConfig{})
	before := ids(MustStatus(t, c, statusReq(i64(0), i64(100))).InstanceStatusSet)
	id := srv.NewInstanceID()
	if err := srv.Create(region, id, cvmsim.StatePending); err != nil {
		t.Fatal(err)
	}
	after := MustStatus(t, c, statusReq(i64(0), i64(100)))
	got := ids(after.InstanceStatusSet)
	if got[0] != id || !equalStrings(got[1:], before) {
		t.Fatalf("after create: first = %s, want %s, rest shifted by one", got[0], id)
	}
	if got, want := *after.TotalCount, int64(31); got != want {
		t.Fatalf("TotalCount = %d, want %d", got, want)
	}
}

func TestPagingDefaultsAndBounds(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 120, Seed: 3, RateLimit: -1})
	for _, method := range []string{"POST", "GET"} {
		c := MustClient(t, srv, clientConfig{method: method})
		t.Run(method+"/default limit is 20", func(t *testing.T) {
			r := MustStatus(t, c, statusReq(nil, nil))
			if got := len(r.InstanceStatusSet); got != 20 {
				t.Fatalf("items = %d, want 20", got)
			}
		})
		t.Run(method+"/limit 100 is the maximum", func(t *testing.T) {
			if got := len(MustStatus(t, c, statusReq(nil, i64(100))).InstanceStatusSet); got != 100 {
				t.Fatalf("items = %d, want 100", got)
			}
		})
		t.Run(method+"/offset past the end is empty", func(t *testing.T) {
			r := MustStatus(t, c, statusReq(i64(500), i64(10)))
			if len(r.InstanceStatusSet) != 0 || *r.TotalCount != 120 {
				t.Fatalf("items = %d, total = %d; want 0, 120", len(r.InstanceStatusSet), *r.TotalCount)
			}
		})
		for _, tc := range []struct {
			name          string
			offset, limit *int64
		}{
			{"limit 0", nil, i64(0)},
			{"limit 101", nil, i64(101)},
			{"negative limit", nil, i64(-1)},
			{"negative offset", i64(-1), nil},
		} {
			t.Run(method+"/"+tc.name+" is InvalidParameterValue", func(t *testing.T) {
				_, err := c.DescribeInstancesStatus(statusReq(tc.offset, tc.limit))
				if got, want := sdkCode(err), cvmsim.CodeInvalidParameterValue; got != want {
					t.Fatalf("code = %q, want %q", got, want)
				}
			})
		}
	}
}

func TestInstanceIDs(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 50, Seed: 4, RateLimit: -1})
	all := srv.Instances(region)
	known := []string{all[3].InstanceId, all[10].InstanceId, all[20].InstanceId}
	unknown := srv.NewInstanceID()
	for _, method := range []string{"POST", "GET"} {
		c := MustClient(t, srv, clientConfig{method: method})
		t.Run(method+"/known found in listing order, unknown absent", func(t *testing.T) {
			r := MustStatus(t, c, statusReq(nil, nil, known[2], unknown, known[0], known[1], known[0]))
			if got := ids(r.InstanceStatusSet); !equalStrings(got, known) {
				t.Fatalf("got %v, want %v", got, known)
			}
			if *r.TotalCount != 3 {
				t.Fatalf("TotalCount = %d, want 3", *r.TotalCount)
			}
		})
		t.Run(method+"/paging applies to the matching set", func(t *testing.T) {
			r := MustStatus(t, c, statusReq(i64(1), i64(1), known...))
			if got := ids(r.InstanceStatusSet); !equalStrings(got, known[1:2]) || *r.TotalCount != 3 {
				t.Fatalf("got %v total %d, want %v total 3", got, *r.TotalCount, known[1:2])
			}
		})
		t.Run(method+"/malformed ID is InvalidInstanceId.Malformed", func(t *testing.T) {
			for _, bad := range []string{"ins-ABCDEFGH", "i-12345678", "ins-1234567", "ins-a.b>*xx", ""} {
				_, err := c.DescribeInstancesStatus(statusReq(nil, nil, known[0], bad))
				if bad == "" && method == "GET" {
					// the SDK drops empty strings from a GET query
					continue
				}
				if got, want := sdkCode(err), cvmsim.CodeInstanceIDMalformed; got != want {
					t.Fatalf("%q: code = %q, want %q", bad, got, want)
				}
			}
		})
		t.Run(method+"/more than 100 IDs is InvalidParameterValue.LimitExceeded", func(t *testing.T) {
			many := make([]string, 101)
			for i := range many {
				many[i] = fmt.Sprintf("ins-%08d", i)
			}
			_, err := c.DescribeInstancesStatus(statusReq(nil, nil, many...))
			if got, want := sdkCode(err), cvmsim.CodeLimitExceeded; got != want {
				t.Fatalf("code = %q, want %q", got, want)
			}
			if _, err := c.DescribeInstancesStatus(statusReq(nil, nil, many[:100]...)); err != nil {
				t.Fatalf("100 IDs: %v", err)
			}
		})
	}
}

func TestDescribeInstancesFields(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 40, Seed: 5})
	all := srv.Instances(region)
	idRe := regexp.MustCompile(`^ins-[a-z0-9]{8}$`)
	for _, method := range []string{"POST", "GET"} {
		c := MustClient(t, srv, clientConfig{method: method})
		req := cvm.NewDescribeInstancesRequest()
		req.Limit = i64(100)
		resp, err := c.DescribeInstances(req)
		if err != nil {
			t.Fatalf("%s DescribeInstances: %v", method, err)
		}
		r := resp.Response
		if *r.TotalCount != 40 || len(r.InstanceSet) != 40 {
			t.Fatalf("%s: total %d items %d, want 40 40", method, *r.TotalCount, len(r.InstanceSet))
		}
		for i, in := range r.InstanceSet {
			want := all[i]
			switch {
			case *in.InstanceId != want.InstanceId || !idRe.MatchString(*in.InstanceId):
				t.Fatalf("item %d: id %s, want %s", i, *in.InstanceId, want.InstanceId)
			case *in.InstanceState != want.InstanceState:
				t.Fatalf("item %d: state %s, want %s", i, *in.InstanceState, want.InstanceState)
			case in.Placement == nil || *in.Placement.Zone != want.Zone || !strings.HasPrefix(*in.Placement.Zone, region+"-"):
				t.Fatalf("item %d: zone %v, want %s", i, in.Placement, want.Zone)
			case in.Placement.ProjectId == nil:
				t.Fatalf("item %d: no ProjectId", i)
			case *in.InstanceName != want.InstanceName || *in.InstanceType != want.InstanceType:
				t.Fatalf("item %d: name/type %s/%s", i, *in.InstanceName, *in.InstanceType)
			case in.LatestOperation == nil || *in.LatestOperationState != "SUCCESS" || in.LatestOperationRequestId == nil:
				t.Fatalf("item %d: latest operation %v %v", i, in.LatestOperation, in.LatestOperationState)
			case len(in.PrivateIpAddresses) != 1:
				t.Fatalf("item %d: private IPs %v", i, in.PrivateIpAddresses)
			case len(in.Tags) != len(want.Tags):
				t.Fatalf("item %d: tags %d, want %d", i, len(in.Tags), len(want.Tags))
			}
			created, err := time.Parse("2006-01-02T15:04:05Z", *in.CreatedTime)
			if err != nil || !created.Equal(want.CreatedTime) {
				t.Fatalf("item %d: CreatedTime %q (%v), want %v", i, *in.CreatedTime, err, want.CreatedTime)
			}
			if *in.InstanceChargeType == "POSTPAID_BY_HOUR" && in.ExpiredTime != nil {
				t.Fatalf("item %d: postpaid with ExpiredTime %s", i, *in.ExpiredTime)
			}
			if *in.InstanceChargeType == "PREPAID" && in.ExpiredTime == nil {
				t.Fatalf("item %d: prepaid without ExpiredTime", i)
			}
		}
	}
}

func TestDescribeInstancesFilters(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{Seed: 6, RateLimit: -1})
	plant := []cvmsim.Instance{
		{InstanceId: "ins-aaaaaaa1", InstanceState: "RUNNING", Zone: "ap-guangzhou-3", InstanceName: "web-prod-01",
			Tags: []cvmsim.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "infra"}}},
		{InstanceId: "ins-aaaaaaa2", InstanceState: "STOPPED", Zone: "ap-guangzhou-4", InstanceName: "web-dev-02",
			Tags: []cvmsim.Tag{{Key: "env", Value: "dev"}}},
		{InstanceId: "ins-aaaaaaa3", InstanceState: "RUNNING", Zone: "ap-guangzhou-4", InstanceName: "db-prod-03",
			Tags: []cvmsim.Tag{}},
	}
	for _, in := range plant {
		if err := srv.CreateInstance(in); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string, values ...string) *cvm.Filter {
		return &cvm.Filter{Name: &name, Values: strs(values...)}
	}
	for _, method := range []string{"POST", "GET"} {
		c := MustClient(t, srv, clientConfig{method: method})
		for _, tc := range []struct {
			name    string
			filters []*cvm.Filter
			want    []string
		}{
			{"zone", []*cvm.Filter{f("zone", "ap-guangzhou-4")}, []string{"ins-aaaaaaa3", "ins-aaaaaaa2"}},
			{"instance-state", []*cvm.Filter{f("instance-state", "STOPPED")}, []string{"ins-aaaaaaa2"}},
			{"instance-name substring", []*cvm.Filter{f("instance-name", "prod")}, []string{"ins-aaaaaaa3", "ins-aaaaaaa1"}},
			{"tag-key", []*cvm.Filter{f("tag-key", "team")}, []string{"ins-aaaaaaa1"}},
			{"tag:env", []*cvm.Filter{f("tag:env", "dev", "prod")}, []string{"ins-aaaaaaa2", "ins-aaaaaaa1"}},
			{"filters are ANDed", []*cvm.Filter{f("zone", "ap-guangzhou-4"), f("instance-state", "RUNNING")}, []string{"ins-aaaaaaa3"}},
		} {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				req := cvm.NewDescribeInstancesRequest()
				req.Filters = tc.filters
				resp, err := c.DescribeInstances(req)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, in := range resp.Response.InstanceSet {
					got = append(got, *in.InstanceId)
				}
				if !equalStrings(got, tc.want) || *resp.Response.TotalCount != int64(len(tc.want)) {
					t.Fatalf("got %v (total %d), want %v", got, *resp.Response.TotalCount, tc.want)
				}
			})
		}
		eleven := make([]*cvm.Filter, 11)
		for i := range eleven {
			eleven[i] = f("zone", "ap-guangzhou-3")
		}
		for _, tc := range []struct {
			name string
			req  func(*cvm.DescribeInstancesRequest)
			code string
		}{
			{"InstanceIds with Filters", func(r *cvm.DescribeInstancesRequest) {
				r.InstanceIds = strs("ins-aaaaaaa1")
				r.Filters = []*cvm.Filter{f("zone", "ap-guangzhou-3")}
			}, cvmsim.CodeInvalidParameter},
			{"eleven filters", func(r *cvm.DescribeInstancesRequest) { r.Filters = eleven }, cvmsim.CodeInvalidFilter},
			{"six values", func(r *cvm.DescribeInstancesRequest) {
				r.Filters = []*cvm.Filter{f("zone", "a", "b", "c", "d", "e", "f")}
			}, cvmsim.CodeFilterValueLimitExceeded},
			{"unknown filter", func(r *cvm.DescribeInstancesRequest) { r.Filters = []*cvm.Filter{f("colour", "red")} }, cvmsim.CodeInvalidFilter},
			{"filter without values", func(r *cvm.DescribeInstancesRequest) { r.Filters = []*cvm.Filter{f("zone")} }, cvmsim.CodeInvalidFilter},
		} {
			t.Run(method+"/"+tc.name+" is "+tc.code, func(t *testing.T) {
				req := cvm.NewDescribeInstancesRequest()
				tc.req(req)
				_, err := c.DescribeInstances(req)
				if got := sdkCode(err); got != tc.code {
					t.Fatalf("code = %q, want %q", got, tc.code)
				}
			})
		}
	}
}

func TestRegions(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}, InstancesPerRegion: 5, Seed: 7})
	t.Run("each region lists its own instances", func(t *testing.T) {
		c := MustClient(t, srv, clientConfig{region: "ap-shanghai"})
		got := ids(MustStatus(t, c, statusReq(nil, nil)).InstanceStatusSet)
		if want := instanceIDs(srv.Instances("ap-shanghai")); !equalStrings(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if n := len(srv.Instances("")); n != 10 {
			t.Fatalf("Instances(\"\") = %d, want 10", n)
		}
	})
	t.Run("missing region is MissingParameter", func(t *testing.T) {
		_, err := MustClient(t, srv, clientConfig{region: "-"}).DescribeInstancesStatus(statusReq(nil, nil))
		if got, want := sdkCode(err), cvmsim.CodeMissingParameter; got != want {
			t.Fatalf("code = %q, want %q", got, want)
		}
	})
	t.Run("made-up region is UnsupportedRegion", func(t *testing.T) {
		_, err := MustClient(t, srv, clientConfig{region: "xx-nowhere-9"}).DescribeInstancesStatus(statusReq(nil, nil))
		if got, want := sdkCode(err), cvmsim.CodeUnsupportedRegion; got != want {
			t.Fatalf("code = %q, want %q", got, want)
		}
	})
	t.Run("real region not served is empty", func(t *testing.T) {
		r := MustStatus(t, MustClient(t, srv, clientConfig{region: "ap-tokyo"}), statusReq(nil, nil))
		if *r.TotalCount != 0 || r.InstanceStatusSet == nil || len(r.InstanceStatusSet) != 0 {
			t.Fatalf("total %d set %v, want 0 and []", *r.TotalCount, r.InstanceStatusSet)
		}
	})
}

func TestUnsignedPayloadAccepted(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3})
	c := MustClient(t, srv, clientConfig{unsigned: true})
	if got := *MustStatus(t, c, statusReq(nil, nil)).TotalCount; got != 3 {
		t.Fatalf("TotalCount = %d, want 3", got)
	}
}

func TestEnvelopeAndParameterErrors(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3, RateLimit: -1})
	for _, tc := range []struct {
		name string
		req  rawRequest
		code string
	}{
		{"unknown action", rawRequest{action: "RunInstances"}, cvmsim.CodeInvalidAction},
		{"wrong version", rawRequest{version: "2022-01-01"}, cvmsim.CodeNoSuchVersion},
		{"missing timestamp", rawRequest{headers: map[string]string{"X-TC-Timestamp": ""}}, cvmsim.CodeMissingParameter},
		{"unknown parameter", rawRequest{body: `{"Offset":0,"Bogus":1}`}, cvmsim.CodeUnknownParameter},
		{"parameter names are case-sensitive", rawRequest{body: `{"offset":0}`}, cvmsim.CodeUnknownParameter},
		{"Filters is not a DescribeInstancesStatus parameter", rawRequest{body: `{"Filters":[]}`}, cvmsim.CodeUnknownParameter},
		{"bad JSON", rawRequest{body: `{"Offset":`}, cvmsim.CodeInvalidParameter},
		{"JSON array body", rawRequest{body: `[1]`}, cvmsim.CodeInvalidParameter},
		{"Offset of the wrong type", rawRequest{body: `{"Offset":"10"}`}, cvmsim.CodeInvalidParameter},
		{"fractional Limit", rawRequest{body: `{"Limit":1.5}`}, cvmsim.CodeInvalidParameter},
		{"non-string ID", rawRequest{body: `{"InstanceIds":[1]}`}, cvmsim.CodeInvalidParameter},
		{"form body", rawRequest{contentType: "application/x-www-form-urlencoded", body: `Offset=0`}, cvmsim.CodeInvalidParameter},
		{"GET unknown parameter", rawRequest{method: "GET", query: "Offset=0&Colour=red"}, cvmsim.CodeUnknownParameter},
		{"GET bad index", rawRequest{method: "GET", query: "InstanceIds.x=ins-12345678"}, cvmsim.CodeUnknownParameter},
		{"GET repeated parameter", rawRequest{method: "GET", query: "Limit=1&Limit=2"}, cvmsim.CodeInvalidParameter},
		{"GET Limit not a number", rawRequest{method: "GET", query: "Limit=ten"}, cvmsim.CodeInvalidParameter},
		{"PUT method", rawRequest{method: "PUT"}, cvmsim.CodeUnsupportedProtocol},
	} {
		t.Run(tc.name+" is "+tc.code, func(t *testing.T) {
			r, body := do(t, tc.req.build(t, srv))
			if got := r.errCode(); got != tc.code {
				t.Fatalf("code = %q, want %q: %s", got, tc.code, body)
			}
		})
	}
	t.Run("charset and empty body are accepted", func(t *testing.T) {
		r, body := do(t, rawRequest{contentType: "application/json; charset=utf-8"}.build(t, srv))
		if r.errCode() != "" || *r.Response.TotalCount != 3 {
			t.Fatalf("got %s", body)
		}
	})
	t.Run("GET arrays are indexed", func(t *testing.T) {
		id := srv.Instances(region)[1].InstanceId
		r, body := do(t, rawRequest{method: "GET", query: "InstanceIds.0=" + id + "&Limit=5"}.build(t, srv))
		if r.errCode() != "" || *r.Response.TotalCount != 1 || !strings.Contains(string(body), id) {
			t.Fatalf("got %s", body)
		}
	})
}

func TestHandlerOnOwnListener(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 4})
	own := httptest.NewServer(srv.Handler())
	defer own.Close()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(own.URL, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.DisableRegionBreaker = true
	c, err := cvm.NewClient(common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey), region, cpf)
	if err != nil {
		t.Fatal(err)
	}
	if got := *MustStatus(t, c, statusReq(nil, nil)).TotalCount; got != 4 {
		t.Fatalf("TotalCount = %d, want 4", got)
	}
	if srv.URL() != "http://"+srv.Endpoint() || !strings.HasPrefix(srv.Endpoint(), "127.0.0.1:") {
		t.Fatalf("URL %s Endpoint %s", srv.URL(), srv.Endpoint())
	}
}
