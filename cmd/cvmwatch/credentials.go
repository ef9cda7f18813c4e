package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// metadataEndpointEnv overrides the metadata service that the default chain
// asks for a CVM role (tests, private clouds). A credentials section sets it
// with its metadata_endpoint key instead.
const metadataEndpointEnv = "CVMWATCH_METADATA_ENDPOINT"

// accountCredential returns the credential of account i: from its
// credentials section (explicit keys, profile file, CVM role, each possibly
// under an AssumeRole; temporary keys refreshed until ctx ends), or else the
// default chain in the SDK's order (see defaultChain).
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

	cfg, from, err := defaultChain(ctx, allowInsecure)
	if err != nil {
		return nil, fmt.Errorf("accounts[%d] (%s): no credentials section, and %w; set accounts[%d].credentials, or "+
			"%s and %s, or the profile file ~/.tencentcloud/credentials, or bind a CAM role to this CVM",
			i, a.Name, err, i, envSecretID, envSecretKey)
	}
	cfg.Logger = log
	cred, err := cvm.NewCredential(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("accounts[%d] (%s): credentials from %s: %w", i, a.Name, from, err)
	}
	log.Info("no credentials section: using the default chain", "source", cred.Source())
	return cred, nil
}

// Where the SDK's default chain looks, in its order.
const (
	envSecretID  = "TENCENTCLOUD_SECRET_ID"
	envSecretKey = "TENCENTCLOUD_SECRET_KEY"
	envProfile   = "TENCENTCLOUD_CREDENTIALS_FILE"
)

// defaultChain picks the source the SDK's default chain would use: the
// environment, then the profile file, then the CAM role bound to this CVM
// (asked of the metadata service, CVMWATCH_METADATA_ENDPOINT overriding it).
// Like the SDK it goes on to the next source only when one is absent, never
// when it is present but broken. Unlike the SDK's providers, ours read the
// keys: the profile file's permissions are checked as for a configured one,
// metadata calls have a timeout, temporary keys are refreshed, and no error
// quotes a file that holds a secret.
func defaultChain(ctx context.Context, allowInsecure bool) (cvm.CredentialConfig, string, error) {
	id, idSet := os.LookupEnv(envSecretID)
	key, keySet := os.LookupEnv(envSecretKey)
	if idSet || keySet {
		if id == "" || key == "" {
			return cvm.CredentialConfig{}, "", fmt.Errorf("%s and %s must both be set and not empty", envSecretID, envSecretKey)
		}
		return cvm.CredentialConfig{SecretID: id, SecretKey: key}, "the environment", nil
	}

	path, set := os.LookupEnv(envProfile)
	if set && path == "" {
		return cvm.CredentialConfig{}, "", fmt.Errorf("%s is set but empty", envProfile)
	}
	if !set {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, ".tencentcloud", "credentials")
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				path = ""
			}
		}
	}
	if path != "" {
		return cvm.CredentialConfig{ProfileFile: path, Profile: cvm.DefaultProfile, AllowInsecureFile: allowInsecure},
			"the profile file " + path, nil
	}

	endpoint := os.Getenv(metadataEndpointEnv)
	role, err := cvm.DiscoverCVMRole(ctx, endpoint, cvm.DefaultCredentialTimeout)
	if err != nil {
		return cvm.CredentialConfig{}, "", fmt.Errorf("neither %s nor a profile file is there, and no CVM role: %w", envSecretID, err)
	}
	return cvm.CredentialConfig{CVMRole: role, MetadataEndpoint: endpoint}, "the CVM role " + role, nil
}
