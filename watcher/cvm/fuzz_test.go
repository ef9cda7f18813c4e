package cvm

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// fixedBody answers every request with the same status and body.
type fixedBody struct {
	status int
	body   []byte
}

func (f fixedBody) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    f.status,
		Header:        http.Header{"Content-Type": []string{"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(f.body)),
		ContentLength: int64(len(f.body)),
	}, nil
}

// FuzzScanResponse feeds arbitrary response bodies through the official SDK
// into Scan and Lookup: neither may panic, and no observation may be invalid
// or name an ID the body does not contain. The body answers both APIs: a
// second, mixed, scanner reads it as DescribeInstances pages too, and no
// Described entry may disagree with an observation.
func FuzzScanResponse(f *testing.F) {
	seeds := []string{
		`{"Response":{"TotalCount":2,"InstanceStatusSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"RUNNING"},{"InstanceId":"ins-bbbbbbbb","InstanceState":"STOPPED"}],"RequestId":"r"}}`,
		`{"Response":{"TotalCount":0,"InstanceStatusSet":[],"RequestId":"r"}}`,
		`{}`,
		`{"Response":null}`,
		`{"Response":{"TotalCount":5,"InstanceStatusSet":null,"RequestId":"r"}}`,
		`{"Response":{"TotalCount":3,"InstanceStatusSet":[null,{"InstanceId":null,"InstanceState":"RUNNING"},{"InstanceId":"ins-a.b>*","InstanceState":"RUNNING"}]}}`,
		`{"Response":{"TotalCount":-1,"InstanceStatusSet":[]}}`,
		`{"Response":{"TotalCount":99999999999,"InstanceStatusSet":[]}}`,
		`{"Response":{"TotalCount":1,"InstanceStatusSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"ABSENT"}]}}`,
		`{"Response":{"Error":{"Code":"InternalError","Message":"x"},"RequestId":"r"}}`,
		`{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"x"},"RequestId":"r"}}`,
		`<html>502</html>`,
		`{"Response":{"TotalCount":2,"InstanceStatusSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"RUNNING"},{"InstanceId":"ins-aaaaaaaa","InstanceState":"STOPPED"}]}}`,
		`{"Response":{"TotalCount":250,"InstanceStatusSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"RUNNING"}],"InstanceSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"RUNNING","InstanceName":"n","Tags":[null,{"Key":"k","Value":null}]}],"RequestId":"r"}}`,
		`{"Response":{"TotalCount":250,"InstanceStatusSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"RUNNING"}],"InstanceSet":[{"InstanceId":"ins-aaaaaaaa","InstanceState":"STOPPED"},null,{"InstanceId":"ins-a.b>*","InstanceState":"RUNNING"},{"InstanceId":"ins-bbbbbbbb","InstanceState":null}]}}`,
		`{"Response":{"TotalCount":250,"InstanceStatusSet":[],"InstanceSet":null}}`,
	}
	for _, s := range seeds {
		f.Add(200, []byte(s))
	}
	f.Add(502, []byte(`<html>bad gateway</html>`))

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		client, err := NewClient(ClientConfig{Region: "ap-guangzhou", Endpoint: "http://127.0.0.1:1", Credential: common.NewCredential("id", "key")})
		if err != nil {
			t.Fatal(err)
		}
		client.WithHttpTransport(&cappedTransport{next: fixedBody{status: status, body: body}, max: 1 << 20})
		cfg := ScannerConfig{
			Target:       watcher.Target{Account: "fuzz", Region: "ap-guangzhou"},
			Client:       client,
			Limiter:      NewLimiter(1e9, 1000),
			MaxInstances: 1000,
			Retry:        RetryPolicy{MaxAttempts: 1, BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond},
			Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		s, err := NewScanner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Describe = NewLimiter(1e9, 1000)
		mixed, err := NewScanner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		scan, err := s.Scan(t.Context())
		if (err == nil) != scan.Complete {
			t.Fatalf("Scan: complete=%v but err=%v", scan.Complete, err)
		}
		mscan, err := mixed.Scan(t.Context())
		if (err == nil) != mscan.Complete {
			t.Fatalf("mixed Scan: complete=%v but err=%v", mscan.Complete, err)
		}
		check := func(what string, obs []watcher.Observation) {
			for _, o := range obs {
				if err := watcher.ValidateObservation(o); err != nil {
					t.Fatalf("%s passed an invalid observation: %v", what, err)
				}
				if !bytes.Contains(body, []byte(o.InstanceID)) {
					t.Fatalf("%s invented instance %q", what, o.InstanceID)
				}
			}
		}
		check("Scan", scan.Observations)
		check("mixed Scan", mscan.Observations)
		states := map[string]watcher.State{}
		for _, o := range mscan.Observations {
			states[o.InstanceID] = o.State
		}
		for i, e := range mscan.Described {
			if i > 0 && mscan.Described[i-1].InstanceID >= e.InstanceID {
				t.Fatalf("Described not sorted or not unique at %d: %q after %q", i, e.InstanceID, mscan.Described[i-1].InstanceID)
			}
			if st, ok := states[e.InstanceID]; !ok || st != e.State {
				t.Fatalf("Described %q in state %q, observed %q (%v)", e.InstanceID, e.State, st, ok)
			}
		}
		if len(mscan.Described) > 0 && mscan.Stats.DescribedPages == 0 {
			t.Fatalf("%d described from no DescribeInstances page", len(mscan.Described))
		}
		res, _ := s.Lookup(t.Context(), []string{"ins-aaaaaaaa", "ins-bbbbbbbb"})
		check("Lookup", res.Found)
		listed := listedIDs(body)
		for _, id := range res.Absent {
			if listed[id] {
				t.Fatalf("Lookup calls %s absent although the answer lists it", id)
			}
		}
	})
}

// listedIDs returns the InstanceIds an answer lists as items, as far as the
// standard library's decoder reads it.
func listedIDs(body []byte) map[string]bool {
	var v struct {
		Response struct {
			InstanceStatusSet []*struct{ InstanceId *string }
		}
	}
	out := map[string]bool{}
	if json.Unmarshal(body, &v) != nil {
		return out
	}
	for _, it := range v.Response.InstanceStatusSet {
		if it != nil && it.InstanceId != nil {
			out[*it.InstanceId] = true
		}
	}
	return out
}
