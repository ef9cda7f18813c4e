package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// accountCredential returns the credential of account i: from its
// credentials section (explicit keys, profile file, CVM role, each possibly
// under an AssumeRole; temporary keys refreshed until ctx ends), or else the
// SDK's environment and profile-file providers. The SDK's own CVM role
// provider is never used: it calls the metadata service with no timeout.
func accountCredential(ctx context.Context, i int, a AccountConfig, allowInsecure bool, log *slog.Logger) (common.CredentialIface, error) {
	if cr := a.Credentials; cr != nil {
		cfg := cvm.CredentialConfig{
			SecretID: cr.SecretID, SecretKey: cr.SecretKey.Reveal(),
			ProfileFile: cr.ProfileFile, Profile: cr.Profile, AllowInsecureFile: allowInsecure,
			CVMRole: cr.CVMRole, STSEndpoint: cr.STSEndpoint, MetadataEndpoint: cr.MetadataEndpoint,
			Logger: log.With("account", a.Name),
		}
		if ar := cr.AssumeRole; ar != nil {
			cfg.AssumeRole = &cvm.AssumeRoleConfig{RoleARN: ar.RoleARN, SessionName: ar.SessionName,
				Duration: ar.Duration.D(), ExternalID: ar.ExternalID, Region: ar.Region}
		}
		cred, err := cvm.NewCredential(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("accounts[%d] (%s) credentials: %w", i, a.Name, err)
		}
		return cred, nil
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
