package main

import (
	"errors"
	"fmt"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

// accountCredential returns the credential of account i: its explicit keys,
// or else the SDK's environment and profile-file providers. The SDK's CVM
// role provider is left out of the default chain: it calls the metadata
// service with no timeout and hangs wherever there is none.
func accountCredential(i int, a AccountConfig) (common.CredentialIface, error) {
	if a.Credentials != nil {
		return common.NewCredential(a.Credentials.SecretID, a.Credentials.SecretKey.Reveal()), nil
	}
	chain := common.NewProviderChain([]common.Provider{common.DefaultEnvProvider(), common.DefaultProfileProvider()})
	cred, err := chain.GetCredential()
	if err != nil || cred == nil {
		// The SDK's error text is not shown: it is only "no credential found".
		return nil, fmt.Errorf("accounts[%d] (%s): no credentials: set accounts[%d].credentials, or "+
			"TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or the profile file ~/.tencentcloud/credentials",
			i, a.Name, i)
	}
	if cred.GetSecretId() == "" || cred.GetSecretKey() == "" {
		return nil, errors.New("incomplete credentials from the environment or profile file")
	}
	return cred, nil
}
