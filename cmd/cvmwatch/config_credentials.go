package main

import (
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// CredentialsConfig says where an account's keys come from: explicit keys,
// or a profile file, or a CVM role; AssumeRole then trades them for a
// role's temporary keys (cross-account watching).
type CredentialsConfig struct {
	SecretID  string `yaml:"secret_id"`
	SecretKey Secret `yaml:"secret_key"`
	// ProfileFile is an INI file like ~/.tencentcloud/credentials; Profile
	// its section (default "default").
	ProfileFile string `yaml:"profile_file"`
	Profile     string `yaml:"profile"`
	// CVMRole is the role bound to the CVM instance cvmwatch runs on.
	CVMRole    string            `yaml:"cvm_role"`
	AssumeRole *AssumeRoleConfig `yaml:"assume_role,omitempty"`
	// STSEndpoint and MetadataEndpoint override Tencent's (tests, private
	// clouds).
	STSEndpoint      string `yaml:"sts_endpoint"`
	MetadataEndpoint string `yaml:"metadata_endpoint"`
}

// AssumeRoleConfig is an STS AssumeRole call.
type AssumeRoleConfig struct {
	RoleARN     string `yaml:"role_arn"`
	SessionName string `yaml:"session_name"`
	// Duration is the lifetime asked for each set of temporary keys; zero
	// (left out, in check-config's output too) means the default, 1h.
	Duration   Duration `yaml:"duration,omitempty"`
	ExternalID string   `yaml:"external_id"`
	Region     string   `yaml:"region"`
}

// validate reports the problems of an account's credentials under key
// (accounts[i].credentials). The endpoint is checked with the account's
// other endpoints. written holds the keys a file gives (nil for
// credentials built in Go).
func (c CredentialsConfig) validate(key string, written keySet) configErrors {
	var errs configErrors
	explicit := c.SecretID != "" || c.SecretKey != ""
	switch {
	case explicit && c.SecretID == "":
		errs.add(key+".secret_id", "is empty (secret_key is set)")
	case explicit && c.SecretKey == "":
		errs.add(key+".secret_key", "is empty (secret_id is set)")
	case !explicit && c.ProfileFile == "" && c.CVMRole == "":
		errs.add(key, "give secret_id and secret_key, profile_file, or cvm_role (or leave credentials out for the SDK's default chain)")
	}
	if n := btoi(explicit) + btoi(c.ProfileFile != "") + btoi(c.CVMRole != ""); n > 1 {
		errs.add(key, "give only one of secret_id/secret_key, profile_file and cvm_role")
	}
	if ar := c.AssumeRole; ar != nil {
		ak := key + ".assume_role"
		if ar.RoleARN == "" {
			errs.add(ak+".role_arn", "is required")
		}
		// As cvm.NewCredential will have it; given, it is never zero.
		if d := ar.Duration.D(); d != 0 || written[ak+".duration"] {
			switch {
			case d < cvm.MinAssumeRoleDuration || d > cvm.MaxAssumeRoleDuration:
				errs.add(ak+".duration", "%v must be within [15m, 12h]", d)
			case d%time.Second != 0:
				errs.add(ak+".duration", "%v is not a whole number of seconds", d)
			}
		}
	}
	return errs
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
