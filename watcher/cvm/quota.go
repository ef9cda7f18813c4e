package cvm

import (
	"strings"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

// QuotaKey names the request quota that calls of action through endpoint,
// signed by cred, spend: Tencent Cloud counts requests per API, access
// endpoint and credential, so calls with equal keys share one limit (one
// Limiters entry) and calls with different keys do not. The rules:
//
//   - The credential is its SecretId ("id:AKID..."), except for temporary
//     keys (a Credential with a token: CVM role, AssumeRole), whose SecretId
//     changes at every refresh while the quota stays with the role they come
//     from: those are named by their Source ("source:cvm role r").
//   - The endpoint is its host and port (see ParseEndpoint): the scheme does
//     not matter, and "" is DefaultEndpoint, the SDK's one access endpoint
//     for every region.
//
// The key never holds a secret key or token.
func QuotaKey(cred common.CredentialIface, action, endpoint string) string {
	who := "id:" + cred.GetSecretId()
	if c, ok := cred.(Credential); ok && c.GetToken() != "" {
		who = "source:" + c.Source()
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if host, _, err := ParseEndpoint(endpoint); err == nil {
		endpoint = strings.ToLower(host)
	}
	return who + "|" + action + "|" + endpoint
}
