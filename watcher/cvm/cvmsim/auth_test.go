package cvmsim_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

func TestAuthThroughSDK(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 2, RateLimit: -1})
	for _, tc := range []struct {
		name     string
		id, key  string
		offset   time.Duration
		wantCode string
	}{
		{"default credentials succeed", cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey, 0, ""},
		{"unknown SecretId is SecretIdNotFound", "AKIDnobody", "x", 0, cvmsim.CodeAuthSecretIDNotFound},
		{"wrong key is SignatureFailure", cvmsim.DefaultSecretID, "wrong", 0, cvmsim.CodeAuthSignatureFailure},
		{"clock 4 minutes ahead is accepted", cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey, 4 * time.Minute, ""},
		{"clock 6 minutes ahead is SignatureExpire", cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey, 6 * time.Minute, cvmsim.CodeAuthSignatureExpire},
		{"clock 6 minutes behind is SignatureExpire", cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey, -6 * time.Minute, cvmsim.CodeAuthSignatureExpire},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetClockOffset(tc.offset)
			defer srv.SetClockOffset(0)
			for _, method := range []string{"POST", "GET"} {
				c := MustClient(t, srv, clientConfig{method: method, secretID: tc.id, secretKey: tc.key})
				_, err := c.DescribeInstancesStatus(statusReq(i64(0), i64(5)))
				if got := sdkCode(err); got != tc.wantCode {
					t.Fatalf("%s: code = %q, want %q", method, got, tc.wantCode)
				}
			}
		})
	}
	if got := srv.Stats().AuthFailures; got != 8 {
		t.Fatalf("AuthFailures = %d, want 8", got)
	}
}

func TestAuthHandSigned(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{
		InstancesPerRegion: 2, RateLimit: -1,
		Credentials: map[string]string{"AKIDother": "other-key", cvmsim.DefaultSecretID: cvmsim.DefaultSecretKey},
	})
	good := rawRequest{body: `{"Limit":5}`}
	yesterday := time.Now().Add(-24 * time.Hour).UTC().Format("2006-01-02")
	for _, tc := range []struct {
		name string
		req  rawRequest
		code string
	}{
		{"signed request succeeds", good, ""},
		{"second SecretId succeeds", rawRequest{secretID: "AKIDother", secretKey: "other-key"}, ""},
		{"extra signed headers are honoured", rawRequest{signedHeaders: []string{"content-type", "host", "x-tc-action"}, body: `{}`}, ""},
		{"documented lower-cased header values are accepted", rawRequest{signedHeaders: []string{"content-type", "host", "x-tc-action"}, lowerValues: true}, ""},
		{"signed headers in any order", rawRequest{signedHeaders: []string{"x-tc-region", "host", "content-type"}}, ""},
		{"GET signs the raw query", rawRequest{method: "GET", query: "Limit=3&Offset=0"}, ""},
		{"signed header that is absent signs as empty", rawRequest{signedHeaders: []string{"content-type", "host", "x-custom"}}, ""},
		{"charset content type", rawRequest{contentType: "application/json; charset=utf-8"}, ""},
		{"missing Authorization", rawRequest{authorization: " "}, cvmsim.CodeAuthInvalidAuthorization},
		{"garbled Authorization", rawRequest{authorization: "TC3-HMAC-SHA256 garbage"}, cvmsim.CodeAuthInvalidAuthorization},
		{"wrong algorithm", rawRequest{authorization: "HMAC-SHA1 Credential=AKIDcvmsim/2020-01-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00"}, cvmsim.CodeAuthInvalidAuthorization},
		{"short credential", rawRequest{authorization: "TC3-HMAC-SHA256 Credential=AKIDcvmsim/cvm, SignedHeaders=content-type;host, Signature=00"}, cvmsim.CodeAuthInvalidAuthorization},
		{"host not signed", rawRequest{signedHeaders: []string{"content-type"}}, cvmsim.CodeAuthInvalidAuthorization},
		{"content-type not signed", rawRequest{signedHeaders: []string{"host", "x-tc-action"}}, cvmsim.CodeAuthInvalidAuthorization},
		{"upper-case signed header name", rawRequest{signedHeaders: []string{"Content-Type", "host"}}, cvmsim.CodeAuthInvalidAuthorization},
		{"scope date not the timestamp's", rawRequest{scopeDate: yesterday}, cvmsim.CodeAuthSignatureFailure},
		{"scope service not cvm", rawRequest{scopeService: "cbs"}, cvmsim.CodeAuthSignatureFailure},
		{"timestamp ten minutes old", rawRequest{timestamp: time.Now().Add(-10 * time.Minute).Unix()}, cvmsim.CodeAuthSignatureExpire},
		{"unknown SecretId", rawRequest{secretID: "AKIDnobody", secretKey: "x"}, cvmsim.CodeAuthSecretIDNotFound},
		{"the signed Host is whatever the client sent", rawRequest{host: "cvm.tencentcloudapi.com"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, body := do(t, tc.req.build(t, srv))
			if got := r.errCode(); got != tc.code {
				t.Fatalf("code = %q, want %q: %s", got, tc.code, body)
			}
		})
	}
	t.Run("body changed after signing is SignatureFailure", func(t *testing.T) {
		req := good.build(t, srv)
		req.Body = httpBody(`{"Limit":6}`)
		req.ContentLength = int64(len(`{"Limit":6}`))
		r, body := do(t, req)
		if got, want := r.errCode(), cvmsim.CodeAuthSignatureFailure; got != want {
			t.Fatalf("code = %q, want %q: %s", got, want, body)
		}
	})
	t.Run("Host changed after signing is SignatureFailure", func(t *testing.T) {
		req := rawRequest{host: "cvm.tencentcloudapi.com"}.build(t, srv)
		req.Host = srv.Endpoint()
		r, body := do(t, req)
		if got, want := r.errCode(), cvmsim.CodeAuthSignatureFailure; got != want {
			t.Fatalf("code = %q, want %q: %s", got, want, body)
		}
	})
	t.Run("replay of a signed request is accepted", func(t *testing.T) {
		first := good.build(t, srv)
		for i := 0; i < 3; i++ {
			req := first.Clone(t.Context())
			req.Body = httpBody(good.body)
			if r, body := do(t, req); r.errCode() != "" {
				t.Fatalf("replay %d: %s", i, body)
			}
		}
	})
}

// TestAuthSignedHost checks the two forms of the signed host that official
// SDKs produce, the Host as sent (Go, Python, Java) and the Host without its
// port (Node.js signs the URL's hostname but sends Host with the port), and
// that every third form is SignatureFailure.
func TestAuthSignedHost(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 2, RateLimit: -1})
	ep := srv.Endpoint() // 127.0.0.1:<port>
	name, port, err := net.SplitHostPort(ep)
	if err != nil {
		t.Fatal(err)
	}
	otherPort := "1"
	if port == otherPort {
		otherPort = "2"
	}
	for _, tc := range []struct {
		name string
		req  rawRequest
		code string
	}{
		{"with port, as sent (Go SDK)", rawRequest{signedHost: ep}, ""},
		{"without port (Node.js SDK)", rawRequest{signedHost: name}, ""},
		{"without port, GET", rawRequest{method: "GET", query: "Limit=3", signedHost: name}, ""},
		{"without port, more signed headers, lower-cased values",
			rawRequest{signedHeaders: []string{"content-type", "host", "x-tc-action"}, lowerValues: true, signedHost: name}, ""},
		{"named host without port", rawRequest{host: "cvm.example.test:" + port, signedHost: "cvm.example.test"}, ""},
		{"IPv6 without port keeps its brackets", rawRequest{host: "[::1]:" + port, signedHost: "[::1]"}, ""},
		{"host sent without port is signed as sent", rawRequest{host: name}, ""},

		{"another port", rawRequest{signedHost: name + ":" + otherPort}, cvmsim.CodeAuthSignatureFailure},
		{"another host name with the port", rawRequest{signedHost: "localhost:" + port}, cvmsim.CodeAuthSignatureFailure},
		{"another host name without port", rawRequest{signedHost: "localhost"}, cvmsim.CodeAuthSignatureFailure},
		{"empty port", rawRequest{signedHost: name + ":"}, cvmsim.CodeAuthSignatureFailure},
		{"port added to a Host sent without one", rawRequest{host: name, signedHost: ep}, cvmsim.CodeAuthSignatureFailure},
		{"IPv6 without brackets", rawRequest{host: "[::1]:" + port, signedHost: "::1"}, cvmsim.CodeAuthSignatureFailure},
		{"without port but the wrong key", rawRequest{signedHost: name, secretKey: "wrong"}, cvmsim.CodeAuthSignatureFailure},
		{"without port but another scope service", rawRequest{signedHost: name, scopeService: "cbs"}, cvmsim.CodeAuthSignatureFailure},

		// The Node.js and Java SDKs name the scope service after the
		// endpoint's first label: "127" for 127.0.0.1:PORT.
		{"scope service is the host's first label (Node.js, Java SDKs)",
			rawRequest{signedHost: name, scopeService: strings.Split(name, ".")[0]}, ""},
		{"scope service from a named host's first label",
			rawRequest{host: "sim.example.test:" + port, signedHost: "sim.example.test", scopeService: "sim"}, ""},
		{"scope service of a host without a dot is the whole host, port and all",
			rawRequest{host: "localhost:" + port, signedHost: "localhost", scopeService: "localhost:" + port}, ""},
		{"scope service of a host without a dot is not its name alone",
			rawRequest{host: "localhost:" + port, signedHost: "localhost", scopeService: "localhost"}, cvmsim.CodeAuthSignatureFailure},
		{"scope service is another label of the host",
			rawRequest{host: "sim.example.test:" + port, scopeService: "example"}, cvmsim.CodeAuthSignatureFailure},
		{"scope service is the host's first label plus more",
			rawRequest{signedHost: name, scopeService: strings.Split(name, ".")[0] + "0"}, cvmsim.CodeAuthSignatureFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.secretKey != "" {
				tc.req.secretID = cvmsim.DefaultSecretID
			}
			r, body := do(t, tc.req.build(t, srv))
			if got := r.errCode(); got != tc.code {
				t.Fatalf("code = %q, want %q: %s", got, tc.code, body)
			}
		})
	}
	t.Run("body changed after signing without port is SignatureFailure", func(t *testing.T) {
		req := rawRequest{body: `{"Limit":5}`, signedHost: name}.build(t, srv)
		req.Body = httpBody(`{"Limit":6}`)
		req.ContentLength = int64(len(`{"Limit":6}`))
		r, body := do(t, req)
		if got, want := r.errCode(), cvmsim.CodeAuthSignatureFailure; got != want {
			t.Fatalf("code = %q, want %q: %s", got, want, body)
		}
	})
}

// TestPublishedSignatureExample verifies Tencent's published worked example of
// TC3-HMAC-SHA256 (API 3.0 "签名方法 v3" / "Signature v3": cvm
// DescribeInstances in ap-guangzhou at timestamp 1551113065, POST to
// cvm.tencentcloudapi.com, SignedHeaders content-type;host, payload hash
// 35e9c5b0..., CanonicalRequest hash 5ffe6a04...), sent to the simulator as
// the real request.
//
//   - The international "Signature v3" page (tencentcloud.com, "Making API
//     Requests") uses SecretId AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE and
//     SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE and publishes
//     Signature=72e494ea....
//   - The older Chinese edition masks the keys as
//     AKIDz8krbsJ5yKBZQpn74WFkmLPx3******* and Gu5t9xGARNpq86cd98joQYCN3*******
//     and publishes Signature=2230eefd..., the signature of those literal
//     strings (value as quoted by public code that tests against the page).
//
// The current Chinese edition signs content-type;host;x-tc-action and
// publishes intermediate keys instead; it is checked in
// auth_internal_test.go.
func TestPublishedSignatureExample(t *testing.T) {
	const (
		host    = "cvm.tencentcloudapi.com"
		ts      = 1551113065
		payload = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	)
	for _, tc := range []struct {
		name, id, key, sig string
	}{
		{"EXAMPLE keys", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
			"72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"},
		{"masked keys", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******",
			"2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 5, Seed: 1, Credentials: map[string]string{tc.id: tc.key}})
			srv.SetClockOffset(time.Until(time.Unix(ts, 0)))
			send := func(body string) map[string]any {
				req := httptest.NewRequest(http.MethodPost, "http://"+host+"/", strings.NewReader(body))
				req.Host = host
				req.Header.Set("Authorization", "TC3-HMAC-SHA256 Credential="+tc.id+"/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature="+tc.sig)
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
				req.Header.Set("X-TC-Action", "DescribeInstances")
				req.Header.Set("X-TC-Timestamp", "1551113065")
				req.Header.Set("X-TC-Version", "2017-03-12")
				req.Header.Set("X-TC-Region", "ap-guangzhou")
				rec := httptest.NewRecorder()
				srv.Handler().ServeHTTP(rec, req)
				var out struct{ Response map[string]any }
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatalf("decode %s: %v", rec.Body, err)
				}
				return out.Response
			}
			if r := send(payload); r["Error"] != nil {
				t.Fatalf("published example rejected: %v", r["Error"])
			}
			r := send(strings.Replace(payload, `"Limit": 1`, `"Limit": 2`, 1))
			if e, _ := r["Error"].(map[string]any); e == nil || e["Code"] != cvmsim.CodeAuthSignatureFailure {
				t.Fatalf("tampered example: got %v, want %s", r, cvmsim.CodeAuthSignatureFailure)
			}
		})
	}
}
