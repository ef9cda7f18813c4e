package cvmsim_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

const region = "ap-guangzhou"

// MustServer starts a simulator closed by t.Cleanup.
func MustServer(tb testing.TB, opts cvmsim.Options) *cvmsim.Server {
	tb.Helper()
	srv, err := cvmsim.NewServer(opts)
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// clientConfig describes an SDK client of a test.
type clientConfig struct {
	method    string // "POST" (default) or "GET"
	region    string // default ap-guangzhou; "-" for none
	secretID  string
	secretKey string
	unsigned  bool
}

// MustClient returns an official SDK client pointed at srv, never at a real
// endpoint: explicit credentials, HTTP, no region breaker.
func MustClient(tb testing.TB, srv *cvmsim.Server, cfg clientConfig) *cvm.Client {
	tb.Helper()
	if cfg.secretID == "" {
		cfg.secretID, cfg.secretKey = cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey
	}
	switch cfg.region {
	case "":
		cfg.region = region
	case "-":
		cfg.region = ""
	}
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = srv.Endpoint()
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 10
	if cfg.method != "" {
		cpf.HttpProfile.ReqMethod = cfg.method
	}
	cpf.DisableRegionBreaker = true
	cpf.UnsignedPayload = cfg.unsigned
	c, err := cvm.NewClient(common.NewCredential(cfg.secretID, cfg.secretKey), cfg.region, cpf)
	if err != nil {
		tb.Fatalf("cvm.NewClient: %v", err)
	}
	return c
}

// sdkCode returns the Tencent error code of err, or "" for nil.
func sdkCode(err error) string {
	if err == nil {
		return ""
	}
	var e *tcerr.TencentCloudSDKError
	if errors.As(err, &e) {
		return e.GetCode()
	}
	return "not an SDK error: " + err.Error()
}

func i64(v int64) *int64 { return &v }

func strs(ss ...string) []*string {
	out := make([]*string, len(ss))
	for i := range ss {
		out[i] = &ss[i]
	}
	return out
}

func statusReq(offset, limit *int64, ids ...string) *cvm.DescribeInstancesStatusRequest {
	req := cvm.NewDescribeInstancesStatusRequest()
	req.Offset, req.Limit = offset, limit
	if len(ids) > 0 {
		req.InstanceIds = strs(ids...)
	}
	return req
}

// ids returns the IDs of a status page ("<nil>" for a null ID).
func ids(set []*cvm.InstanceStatus) []string {
	out := make([]string, 0, len(set))
	for _, s := range set {
		if s == nil || s.InstanceId == nil {
			out = append(out, "<nil>")
			continue
		}
		out = append(out, *s.InstanceId)
	}
	return out
}

func instanceIDs(list []cvmsim.Instance) []string {
	out := make([]string, 0, len(list))
	for _, in := range list {
		out = append(out, in.InstanceId)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// MustStatus calls DescribeInstancesStatus and fails the test on an error.
func MustStatus(tb testing.TB, c *cvm.Client, req *cvm.DescribeInstancesStatusRequest) *cvm.DescribeInstancesStatusResponseParams {
	tb.Helper()
	resp, err := c.DescribeInstancesStatus(req)
	if err != nil {
		tb.Fatalf("DescribeInstancesStatus: %v", err)
	}
	if resp.Response == nil {
		tb.Fatalf("DescribeInstancesStatus: nil Response")
	}
	return resp.Response
}

// rawRequest is a hand-built API request, signed by this file's own
// independent TC3 implementation.
type rawRequest struct {
	method        string // default POST
	host          string // default the server's endpoint
	signedHost    string // the host value signed; default host
	action        string // default DescribeInstancesStatus
	version       string // default 2017-03-12
	region        string // default ap-guangzhou; "-" for none
	timestamp     int64  // default now
	contentType   string // default application/json (POST)
	query         string
	body          string
	signedHeaders []string // default content-type, host
	headers       map[string]string
	secretID      string
	secretKey     string
	scopeDate     string // override the credential scope date
	scopeService  string // override the credential scope service
	lowerValues   bool   // lower-case header values, as the documentation does
	authorization string // used as is when set
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tc3Sign returns the Authorization header value for the given parts.
func tc3Sign(secretID, secretKey, method, query string, names, values []string, payload string, ts int64, date, service string) string {
	var ch strings.Builder
	for i, n := range names {
		ch.WriteString(n + ":" + values[i] + "\n")
	}
	signed := strings.Join(names, ";")
	canonical := method + "\n/\n" + query + "\n" + ch.String() + "\n" + signed + "\n" + hexSum(payload)
	realDate := time.Unix(ts, 0).UTC().Format("2006-01-02")
	scope := date + "/" + service + "/tc3_request"
	sts := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + hexSum(canonical)
	k := hmacSum([]byte("TC3"+secretKey), realDate)
	k = hmacSum(k, service)
	k = hmacSum(k, "tc3_request")
	sig := hex.EncodeToString(hmacSum(k, sts))
	return "TC3-HMAC-SHA256 Credential=" + secretID + "/" + scope + ", SignedHeaders=" + signed + ", Signature=" + sig
}

func (rr rawRequest) build(tb testing.TB, srv *cvmsim.Server) *http.Request {
	tb.Helper()
	if rr.method == "" {
		rr.method = http.MethodPost
	}
	if rr.host == "" {
		rr.host = srv.Endpoint()
	}
	if rr.action == "" {
		rr.action = cvmsim.ActionDescribeInstancesStatus
	}
	if rr.version == "" {
		rr.version = cvmsim.APIVersion
	}
	if rr.region == "" {
		rr.region = region
	}
	if rr.timestamp == 0 {
		rr.timestamp = time.Now().Unix()
	}
	if rr.contentType == "" {
		rr.contentType = "application/json"
		if rr.method == http.MethodGet {
			rr.contentType = "application/x-www-form-urlencoded"
		}
	}
	if rr.signedHeaders == nil {
		rr.signedHeaders = []string{"content-type", "host"}
	}
	if rr.secretID == "" {
		rr.secretID, rr.secretKey = cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey
	}
	target := srv.URL() + "/"
	req, err := http.NewRequest(rr.method, target, bytes.NewReader([]byte(rr.body)))
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	req.URL.RawQuery = rr.query
	req.Host = rr.host
	req.Header.Set("Content-Type", rr.contentType)
	req.Header.Set("X-TC-Action", rr.action)
	req.Header.Set("X-TC-Version", rr.version)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(rr.timestamp, 10))
	if rr.region != "-" {
		req.Header.Set("X-TC-Region", rr.region)
	}
	for k, v := range rr.headers {
		req.Header.Set(k, v)
	}
	if rr.authorization != "" {
		req.Header.Set("Authorization", rr.authorization)
		return req
	}
	values := make([]string, len(rr.signedHeaders))
	for i, n := range rr.signedHeaders {
		if n == "host" {
			values[i] = rr.host
			if rr.signedHost != "" {
				values[i] = rr.signedHost
			}
		} else {
			values[i] = req.Header.Get(n)
		}
		if rr.lowerValues {
			values[i] = strings.ToLower(values[i])
		}
	}
	date := time.Unix(rr.timestamp, 0).UTC().Format("2006-01-02")
	if rr.scopeDate != "" {
		date = rr.scopeDate
	}
	service := "cvm"
	if rr.scopeService != "" {
		service = rr.scopeService
	}
	query := ""
	if rr.method == http.MethodGet {
		query = rr.query
	}
	req.Header.Set("Authorization", tc3Sign(rr.secretID, rr.secretKey, rr.method, query, rr.signedHeaders, values, rr.body, rr.timestamp, date, service))
	return req
}

// apiReply is the envelope of every API answer.
type apiReply struct {
	Response struct {
		Error *struct {
			Code    string
			Message string
		}
		RequestId         string
		TotalCount        *int64
		InstanceStatusSet json.RawMessage
		InstanceSet       json.RawMessage
	}
}

// do sends req and decodes the envelope; it fails the test on a non-200 or
// non-JSON answer.
func do(tb testing.TB, req *http.Request) (apiReply, []byte) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("do: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var r apiReply
	if err := json.Unmarshal(body, &r); err != nil {
		tb.Fatalf("decode %s: %v", body, err)
	}
	if r.Response.RequestId == "" {
		tb.Fatalf("no RequestId in %s", body)
	}
	return r, body
}

// errCode returns the error code of a reply, "" for success.
func (r apiReply) errCode() string {
	if r.Response.Error == nil {
		return ""
	}
	return r.Response.Error.Code
}

func httpBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func itoa(i int) string { return strconv.Itoa(i) }
