package cvmsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// FuzzRequestParsing throws arbitrary requests at the API handler: method,
// action, region, query, body, Content-Type, a signature that is either
// computed (so parsing past authentication is exercised) or taken from the
// input, and a timestamp skew. Whatever comes in, the answer must be HTTP 200
// with a JSON {"Response":{...,"RequestId":"..."}} envelope, never a panic.
func FuzzRequestParsing(f *testing.F) {
	srv, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 25, Seed: 1, RateLimit: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	h := srv.Handler()
	host := srv.Endpoint()

	type seed struct {
		method, action, region, query, body, contentType, signedHeaders, authorization string
		sign                                                                           bool
		skew                                                                           int64
	}
	for _, s := range []seed{
		{"POST", "DescribeInstancesStatus", "ap-guangzhou", "", `{"Offset":0,"Limit":100}`, "application/json", "content-type;host", "", true, 0},
		{"POST", "DescribeInstances", "ap-guangzhou", "", `{"Filters":[{"Name":"tag:env","Values":["prod"]}],"Limit":5}`, "application/json; charset=utf-8", "content-type;host;x-tc-action", "", true, 0},
		{"GET", "DescribeInstancesStatus", "ap-guangzhou", "InstanceIds.0=ins-12345678&Limit=1", "", "application/x-www-form-urlencoded", "content-type;host", "", true, 0},
		{"GET", "DescribeInstances", "ap-guangzhou", "Filters.0.Name=zone&Filters.0.Values.0=ap-guangzhou-3&Offset=%zz", "", "", "content-type;host", "", true, 0},
		{"POST", "DescribeInstancesStatus", "ap-tokyo", "", `{"InstanceIds":["ins-a.b>*",null,1]}`, "application/json", "content-type;host", "", true, 0},
		{"POST", "DescribeInstancesStatus", "", "", `{"Offset":1e400}`, "application/json", "content-type;host", "", true, 0},
		{"POST", "DescribeInstancesStatus", "ap-guangzhou", "", `{"Offset":0}`, "application/json", "", "TC3-HMAC-SHA256 Credential=AKIDcvmsim/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00", false, 0},
		{"POST", "RunInstances", "ap-guangzhou", "", `{`, "text/plain", "host", "garbage", false, -1000},
		{"PUT", "", "", "", "", "", "", "", false, 0},
		{"POST", "DescribeInstances", "ap-guangzhou", "", `{"Filters":[{"Name":"zone","Values":["a","b","c","d","e","f"]}],"InstanceIds":["ins-12345678"]}`, "application/json", "content-type;host", "", true, 400},
	} {
		f.Add(s.method, s.action, s.region, s.query, []byte(s.body), s.contentType, s.signedHeaders, s.authorization, s.sign, s.skew)
	}
	f.Fuzz(func(t *testing.T, method, action, region, query string, body []byte, contentType, signedHeaders, authorization string, sign bool, skew int64) {
		if method == "" || strings.ContainsAny(method, " \t\r\n/") {
			method = "POST"
		}
		req, err := http.NewRequest(method, "http://"+host+"/", bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.URL.RawQuery = query
		req.Host = host
		ts := time.Now().Unix() + skew%1000
		for k, v := range map[string]string{
			"Content-Type": contentType, "X-TC-Action": action, "X-TC-Region": region,
			"X-TC-Version": cvmsim.APIVersion, "X-TC-Timestamp": strconv.FormatInt(ts, 10),
		} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		if sign {
			names := strings.Split(signedHeaders, ";")
			values := make([]string, len(names))
			for i, n := range names {
				if n == "host" {
					values[i] = host
				} else {
					values[i] = req.Header.Get(n)
				}
			}
			q := ""
			if method == http.MethodGet {
				q = query
			}
			date := time.Unix(ts, 0).UTC().Format("2006-01-02")
			authorization = tc3Sign(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey, method, q, names, values, string(body), ts, date, "cvm")
		}
		req.Header.Set("Authorization", authorization)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		var out struct {
			Response *struct {
				RequestId string
				Error     *struct{ Code, Message string }
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("not JSON: %q", rec.Body.String())
		}
		if out.Response == nil || out.Response.RequestId == "" {
			t.Fatalf("no RequestId: %s", rec.Body.String())
		}
		if out.Response.Error != nil && out.Response.Error.Code == "" {
			t.Fatalf("error without code: %s", rec.Body.String())
		}
	})
}
