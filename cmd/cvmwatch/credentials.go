package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// metadataEndpointEnv overrides the metadata service that the default chain
// asks for a CVM role (tests, private clouds). A credentials section sets it
// with its metadata_endpoint key instead. It is cvmwatch's setting, not the
// SDK's, so it is read here, with the rest of the configuration.
const metadataEndpointEnv = "CVMWATCH_METADATA_ENDPOINT"

// accountCredential returns the credential of account i: from its
// credentials section (explicit keys, profile file, CVM role, each possibly
// under an AssumeRole; temporary keys refreshed until ctx ends), or else the
// default chain in the SDK's order (see cvm.DefaultChain).
func accountCredential(ctx context.Context, i int, a AccountConfig, allowInsecure bool, log *slog.Logger) (common.CredentialIface, error) {
	log = log.With("account", a.Name)
	if cr := a.Credentials; cr != nil {
		cfg := cvm.CredentialConfig{
			SecretID: cr.SecretID, SecretKey: cr.SecretKey.Reveal(),
			ProfileFile: cr.ProfileFile, Profile: cr.Profile, AllowInsecureFile: allowInsecure,
			CVMRole: cr.CVMRole, STSEndpoint: cr.STSEndpoint, MetadataEndpoint: cr.MetadataEndpoint,
			Logger: log,
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

	cfg, from, err := cvm.DefaultChain(ctx, cvm.ChainOptions{
		AllowInsecureFile: allowInsecure, MetadataEndpoint: os.Getenv(metadataEndpointEnv)})
	if err != nil {
		return nil, fmt.Errorf("accounts[%d] (%s): no credentials section, and %w; set accounts[%d].credentials, or "+
			"%s and %s, or the profile file ~/%s, or bind a CAM role to this CVM",
			i, a.Name, err, i, cvm.EnvSecretID, cvm.EnvSecretKey, cvm.DefaultCredentialsFile)
	}
	cfg.Logger = log
	cred, err := cvm.NewCredential(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("accounts[%d] (%s): credentials from %s: %w", i, a.Name, from, err)
	}
	log.Info("no credentials section: using the default chain", "source", cred.Source())
	return cred, nil
}
