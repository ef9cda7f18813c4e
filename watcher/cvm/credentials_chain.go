package cvm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Where the SDK's default credential chain looks, in its order: these
// environment variables, then the profile file, then the CAM role bound to
// the CVM.
const (
	EnvSecretID        = "TENCENTCLOUD_SECRET_ID"
	EnvSecretKey       = "TENCENTCLOUD_SECRET_KEY"
	EnvCredentialsFile = "TENCENTCLOUD_CREDENTIALS_FILE"
)

// DefaultCredentialsFile is the profile file the default chain reads when
// EnvCredentialsFile is not set, relative to the user's home directory
// (slash-separated).
const DefaultCredentialsFile = ".tencentcloud/credentials"

// ChainOptions tune DefaultChain.
type ChainOptions struct {
	// AllowInsecureFile is copied into a profile-file CredentialConfig (see
	// CredentialConfig.AllowInsecureFile).
	AllowInsecureFile bool
	// MetadataEndpoint overrides the metadata service asked for a CVM role,
	// and is copied into a CVM-role CredentialConfig; "" is
	// DefaultMetadataEndpoint.
	MetadataEndpoint string
	// HTTPTimeout bounds the metadata call, and is copied into a CVM-role
	// CredentialConfig; default DefaultCredentialTimeout.
	HTTPTimeout time.Duration
}

// DefaultChain picks the source the SDK's default chain would use: the
// environment (EnvSecretID and EnvSecretKey), then the profile file
// (EnvCredentialsFile, or DefaultCredentialsFile in the home directory, in
// section DefaultProfile), then the CAM role bound to this CVM, asked of the
// metadata service. It returns the CredentialConfig for NewCredential and,
// for messages, where it came from ("the environment", "the profile file
// PATH", "the CVM role NAME").
//
// Like the SDK it goes on to the next source only when one is absent, never
// when it is present but broken: a half-set environment or an empty
// EnvCredentialsFile is an error, and a profile file that is there is
// chosen even if NewCredential will refuse it. Unlike the SDK's providers,
// ours read the keys: the profile file's permissions are checked as for a
// configured one, metadata calls have a timeout, temporary keys are
// refreshed, and no error quotes a file that holds a secret. Only the CVM
// role step makes a network call; when no role is found the error wraps
// ErrNoCVMRole.
func DefaultChain(ctx context.Context, opts ChainOptions) (cfg CredentialConfig, from string, err error) {
	id, idSet := os.LookupEnv(EnvSecretID)
	key, keySet := os.LookupEnv(EnvSecretKey)
	if idSet || keySet {
		if id == "" || key == "" {
			return CredentialConfig{}, "", fmt.Errorf("%s and %s must both be set and not empty", EnvSecretID, EnvSecretKey)
		}
		return CredentialConfig{SecretID: id, SecretKey: key}, "the environment", nil
	}

	path, set := os.LookupEnv(EnvCredentialsFile)
	if set && path == "" {
		return CredentialConfig{}, "", fmt.Errorf("%s is set but empty", EnvCredentialsFile)
	}
	if !set {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, filepath.FromSlash(DefaultCredentialsFile))
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				path = ""
			}
		}
	}
	if path != "" {
		return CredentialConfig{ProfileFile: path, Profile: DefaultProfile, AllowInsecureFile: opts.AllowInsecureFile},
			"the profile file " + path, nil
	}

	role, err := DiscoverCVMRole(ctx, opts.MetadataEndpoint, opts.HTTPTimeout)
	if err != nil {
		return CredentialConfig{}, "", fmt.Errorf("neither %s nor a profile file is there, and no CVM role: %w", EnvSecretID, err)
	}
	return CredentialConfig{CVMRole: role, MetadataEndpoint: opts.MetadataEndpoint, HTTPTimeout: opts.HTTPTimeout},
		"the CVM role " + role, nil
}
