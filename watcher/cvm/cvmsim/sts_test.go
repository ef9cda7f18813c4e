package cvmsim_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

const roleArn = "qcs::cam::uin/100000000001:roleName/cvmwatch-reader"

// assumeRoleResponse is the AssumeRole answer.
type assumeRoleResponse struct {
	Response struct {
		Credentials struct{ Token, TmpSecretId, TmpSecretKey string }
		ExpiredTime int64
		Expiration  string
		RequestId   string
	}
}

// tokenClient returns an SDK cvm client of srv signing with temporary keys.
func tokenClient(tb testing.TB, srv *cvmsim.Server, id, key, token string) *cvm.Client {
	tb.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = srv.Endpoint()
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.DisableRegionBreaker = true
	c, err := cvm.NewClient(common.NewTokenCredential(id, key, token), region, cpf)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestAssumeRoleThroughSDK(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 5})
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = srv.Endpoint()
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqMethod = http.MethodPost
	cpf.DisableRegionBreaker = true
	client := common.NewCommonClient(common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey), region, cpf)
	req := tchttp.NewCommonRequest("sts", cvmsim.STSVersion, cvmsim.ActionAssumeRole)
	if err := req.SetActionParameters(map[string]any{"RoleArn": roleArn, "RoleSessionName": "test-session", "ExternalId": "ext-1"}); err != nil {
		t.Fatal(err)
	}
	resp := tchttp.NewCommonResponse()
	before := time.Now()
	if err := client.Send(req, resp); err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	var r assumeRoleResponse
	if err := json.Unmarshal(resp.GetBody(), &r); err != nil {
		t.Fatal(err)
	}
	c := r.Response.Credentials
	if c.TmpSecretId == "" || c.TmpSecretKey == "" || c.Token == "" || r.Response.RequestId == "" {
		t.Fatalf("incomplete answer: %s", resp.GetBody())
	}
	if got, want := time.Unix(r.Response.ExpiredTime, 0).Sub(before).Round(time.Minute), 2*time.Hour; got != want {
		t.Errorf("default lifetime %v, want %v", got, want)
	}
	if exp, err := time.Parse(time.RFC3339, r.Response.Expiration); err != nil || exp.Unix() != r.Response.ExpiredTime {
		t.Errorf("Expiration %q does not match ExpiredTime %d", r.Response.Expiration, r.Response.ExpiredTime)
	}
	if _, err := tokenClient(t, srv, c.TmpSecretId, c.TmpSecretKey, c.Token).DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
		t.Fatalf("DescribeInstancesStatus with temporary keys: %v", err)
	}
	if got := srv.Stats().Requests[cvmsim.ActionAssumeRole]; got != 1 {
		t.Errorf("Stats.Requests[AssumeRole] = %d, want 1", got)
	}
}

func TestAssumeRoleErrors(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{})
	sts := func(body string) rawRequest {
		return rawRequest{action: cvmsim.ActionAssumeRole, version: cvmsim.STSVersion, scopeService: "sts", body: body}
	}
	tests := []struct {
		name string
		rr   rawRequest
		want string
	}{
		{"role id form", sts(`{"RoleArn":"qcs::cam::uin/12345678:role/4611686018427397919","RoleSessionName":"ab"}`), ""},
		{"service role form", sts(`{"RoleArn":"qcs::cam::uin/12345678:role/tencentcloudServiceRoleName/x","RoleSessionName":"ab","DurationSeconds":43200}`), ""},
		{"get", rawRequest{method: http.MethodGet, action: cvmsim.ActionAssumeRole, version: cvmsim.STSVersion, scopeService: "sts",
			query: "RoleArn=" + roleArn + "&RoleSessionName=ab&DurationSeconds=900"}, ""},
		{"missing role arn", sts(`{"RoleSessionName":"ab"}`), cvmsim.CodeMissingParameter},
		{"missing session name", sts(`{"RoleArn":"` + roleArn + `"}`), cvmsim.CodeMissingParameter},
		{"malformed role arn", sts(`{"RoleArn":"qcs::cam::uin/abc:roleName/x","RoleSessionName":"ab"}`), cvmsim.CodeSTSParamError},
		{"arn of another service", sts(`{"RoleArn":"qcs::cvm::uin/1:roleName/x","RoleSessionName":"ab"}`), cvmsim.CodeSTSParamError},
		{"short session name", sts(`{"RoleArn":"` + roleArn + `","RoleSessionName":"a"}`), cvmsim.CodeSTSParamError},
		{"duration too long", sts(`{"RoleArn":"` + roleArn + `","RoleSessionName":"ab","DurationSeconds":43201}`), cvmsim.CodeSTSOverTimeError},
		{"duration too short", sts(`{"RoleArn":"` + roleArn + `","RoleSessionName":"ab","DurationSeconds":899}`), cvmsim.CodeInvalidParameterValue},
		{"duration not a number", sts(`{"RoleArn":"` + roleArn + `","RoleSessionName":"ab","DurationSeconds":"1h"}`), cvmsim.CodeInvalidParameter},
		{"unknown parameter", sts(`{"RoleArn":"` + roleArn + `","RoleSessionName":"ab","Foo":1}`), cvmsim.CodeUnknownParameter},
		{"cvm version", rawRequest{action: cvmsim.ActionAssumeRole, version: cvmsim.APIVersion, scopeService: "sts", body: `{}`}, cvmsim.CodeNoSuchVersion},
		{"signed for cvm", rawRequest{action: cvmsim.ActionAssumeRole, version: cvmsim.STSVersion, body: `{}`}, cvmsim.CodeAuthSignatureFailure},
		{"describe signed for sts", rawRequest{scopeService: "sts", body: `{}`}, cvmsim.CodeAuthSignatureFailure},
		{"wrong key", rawRequest{action: cvmsim.ActionAssumeRole, version: cvmsim.STSVersion, scopeService: "sts", body: `{}`,
			secretID: cvmsim.DefaultSecretID, secretKey: "wrong"}, cvmsim.CodeAuthSignatureFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := do(t, tt.rr.build(t, srv))
			if got := r.errCode(); got != tt.want {
				t.Fatalf("code %q, want %q: %s", got, tt.want, body)
			}
		})
	}

	t.Run("injected fault", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError"}) // any action: not STS
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Action: cvmsim.ActionAssumeRole, Code: "InternalError.SystemError", Count: 1})
		defer srv.ClearFaults()
		rr := sts(`{"RoleArn":"` + roleArn + `","RoleSessionName":"ab"}`)
		for _, want := range []string{"InternalError.SystemError", ""} {
			if r, body := do(t, rr.build(t, srv)); r.errCode() != want {
				t.Fatalf("code %q, want %q: %s", r.errCode(), want, body)
			}
		}
	})
}

func TestTemporaryCredentials(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 3})
	id, key, token := srv.IssueTemporaryCredentials(time.Hour)
	id2, key2, token2 := srv.IssueTemporaryCredentials(time.Second)
	tests := []struct {
		name, token, want string
	}{
		{"with its token", token, ""},
		{"without token", "", cvmsim.CodeAuthTokenFailure},
		{"with another key's token", token2, cvmsim.CodeAuthTokenFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tokenClient(t, srv, id, key, tt.token).DescribeInstancesStatus(statusReq(nil, nil))
			if got := sdkCode(err); got != tt.want {
				t.Fatalf("code %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		srv.SetClockOffset(2 * time.Second) // past the 1s key, well within the signature's 5 minutes
		defer srv.SetClockOffset(0)
		_, err := tokenClient(t, srv, id2, key2, token2).DescribeInstancesStatus(statusReq(nil, nil))
		if got, want := sdkCode(err), cvmsim.CodeAuthTokenFailure; got != want {
			t.Fatalf("code %q, want %q", got, want)
		}
		if _, err := tokenClient(t, srv, id, key, token).DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
			t.Fatalf("the 1h key stopped working: %v", err)
		}
	})
	if got := srv.Stats().AuthFailures; got != 3 {
		t.Errorf("Stats.AuthFailures = %d, want 3", got)
	}
}
