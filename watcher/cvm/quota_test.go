package cvm_test

import (
	"testing"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// fakeCredential is a cvm.Credential with fixed keys.
type fakeCredential struct{ id, key, token, source string }

func (c fakeCredential) GetSecretId() string                     { return c.id }
func (c fakeCredential) GetSecretKey() string                    { return c.key }
func (c fakeCredential) GetToken() string                        { return c.token }
func (c fakeCredential) GetCredential() (string, string, string) { return c.id, c.key, c.token }
func (c fakeCredential) Close() error                            { return nil }
func (c fakeCredential) Source() string                          { return c.source }

var _ cvm.Credential = fakeCredential{}

// TestQuotaKey: Tencent counts requests per API, access endpoint and
// credential; temporary keys spend the quota of the role they come from.
func TestQuotaKey(t *testing.T) {
	t.Parallel()
	const action = cvm.ActionDescribeInstancesStatus
	permanent := common.NewCredential("AKIDone", secretKeyValue)
	samePermanent := fakeCredential{id: "AKIDone", key: secretKeyValue, source: "profile file /etc/x [default]"}
	otherPermanent := common.NewCredential("AKIDtwo", secretKeyValue)
	roleNow := fakeCredential{id: "AKIDtmp-1", key: secretKeyValue, token: "token-1", source: "cvm role r"}
	roleLater := fakeCredential{id: "AKIDtmp-2", key: secretKeyValue, token: "token-2", source: "cvm role r"}
	otherRole := fakeCredential{id: "AKIDtmp-1", key: secretKeyValue, token: "token-1", source: "cvm role s"}
	// A token without a Source to name the role: only the id is left.
	sdkTemporary := common.NewTokenCredential("AKIDtmp-1", secretKeyValue, "token-1")

	key := func(c common.CredentialIface, endpoint string) string { return cvm.QuotaKey(c, action, endpoint) }
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{"one SecretId shares whatever its source", key(permanent, ""), key(samePermanent, ""), true},
		{"another SecretId does not share", key(permanent, ""), key(otherPermanent, ""), false},
		{"another action does not share", key(permanent, ""), cvm.QuotaKey(permanent, cvm.ActionDescribeRegions, ""), false},
		{"another endpoint does not share", key(permanent, "http://127.0.0.1:1"), key(permanent, "http://127.0.0.1:2"), false},
		{"no endpoint is the default endpoint", key(permanent, ""), key(permanent, cvm.DefaultEndpoint), true},
		{"the scheme and the case of the host do not matter", key(permanent, "CVM.tencentcloudapi.com"), key(permanent, "https://cvm.tencentcloudapi.com"), true},
		{"a regional endpoint is another endpoint", key(permanent, ""), key(permanent, "cvm.ap-guangzhou.tencentcloudapi.com"), false},
		{"temporary keys of one role share across refreshes", key(roleNow, ""), key(roleLater, ""), true},
		{"temporary keys of another role do not share", key(roleNow, ""), key(otherRole, ""), false},
		{"a role's keys do not share with their SecretId", key(roleNow, ""), key(sdkTemporary, ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a == tc.b; got != tc.same {
				t.Fatalf("keys %q and %q: equal = %v, want %v", tc.a, tc.b, got, tc.same)
			}
		})
	}

	t.Run("keys name the credential, the action and the endpoint", func(t *testing.T) {
		for _, tc := range []struct{ got, want string }{
			{key(permanent, ""), "id:AKIDone|DescribeInstancesStatus|cvm.tencentcloudapi.com"},
			{key(roleLater, "http://127.0.0.1:8080"), "source:cvm role r|DescribeInstancesStatus|127.0.0.1:8080"},
			{key(sdkTemporary, ""), "id:AKIDtmp-1|DescribeInstancesStatus|cvm.tencentcloudapi.com"},
		} {
			if tc.got != tc.want {
				t.Errorf("QuotaKey = %q, want %q", tc.got, tc.want)
			}
			assertNoSecret(t, "quota key", tc.got, secretKeyValue, "token-1", "token-2")
		}
	})
}
