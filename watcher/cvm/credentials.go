package cvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

// Defaults for CredentialConfig and AssumeRoleConfig.
const (
	DefaultMetadataEndpoint   = "http://metadata.tencentyun.com"
	DefaultSTSEndpoint        = "sts.tencentcloudapi.com"
	DefaultSTSRegion          = "ap-guangzhou"
	DefaultCredentialTimeout  = 5 * time.Second
	DefaultAssumeRoleDuration = time.Hour
	DefaultProfile            = "default"
	MinAssumeRoleDuration     = 15 * time.Minute
	MaxAssumeRoleDuration     = 12 * time.Hour
)

// CredentialConfig says where an account's credentials come from. Exactly
// one base source is used, in this order of precedence: explicit keys
// (SecretID/SecretKey); a profile file (ProfileFile); a CVM role (CVMRole).
// AssumeRole layers on top of whichever base is given: the base keys sign
// the STS call, the role's temporary keys sign everything else.
type CredentialConfig struct {
	// SecretID and SecretKey are explicit permanent keys.
	SecretID, SecretKey string
	// ProfileFile is an INI file like ~/.tencentcloud/credentials with
	// secret_id and secret_key in section [Profile] (default "default").
	ProfileFile, Profile string
	// AllowInsecureFile accepts a profile file that group or others may
	// read or write; by default such a file is refused, as OpenSSH does.
	AllowInsecureFile bool
	// CVMRole is the name of the CAM role bound to this CVM: its temporary
	// keys come from the instance metadata service.
	CVMRole string
	// AssumeRole, if set, assumes a (typically cross-account) role through
	// STS with the base keys above.
	AssumeRole *AssumeRoleConfig

	// MetadataEndpoint overrides the metadata service, default
	// "http://metadata.tencentyun.com" (tests and private clouds only).
	MetadataEndpoint string
	// STSEndpoint overrides the STS endpoint: "host:port" or
	// "https://host[:port]" means HTTPS, "http://host:port" plain HTTP.
	// Default sts.tencentcloudapi.com over HTTPS.
	STSEndpoint string
	// HTTPTimeout bounds every credential HTTP call; default 5s.
	HTTPTimeout time.Duration
	// Logger receives refresh and failure lines, never a secret; nil
	// discards.
	Logger *slog.Logger
}

// AssumeRoleConfig configures STS AssumeRole.
type AssumeRoleConfig struct {
	// RoleARN is the role to assume, e.g.
	// "qcs::cam::uin/100000000001:roleName/cvmwatch-reader".
	RoleARN string
	// SessionName names the session in CloudAudit: 2-128 characters of
	// [A-Za-z0-9_+=,.@-]. Default "cvmwatch".
	SessionName string
	// Duration is the lifetime asked for each set of temporary keys:
	// default 1h, 15m..12h, whole seconds.
	Duration time.Duration
	// ExternalID is passed as ExternalId when set (the role's trust policy
	// may require it).
	ExternalID string
	// Region is the STS region; default ap-guangzhou.
	Region string
}

// Credential is a Tencent Cloud credential for SDK clients. Its methods are
// safe for concurrent use; GetCredential returns an id, key and token that
// belong together even while a refresh replaces them. Temporary credentials
// are refreshed in the background until Close (or the context given to
// NewCredential ends). A Credential formats (%v, slog) as its Source, never
// as its keys.
type Credential interface {
	common.CredentialIface
	// Close stops the background refresh, if any, and waits for it. It is
	// safe to call more than once; the last keys stay readable.
	Close() error
	// Source says where the keys come from, e.g. "explicit keys",
	// "profile file /etc/cvmwatch/credentials [prod]", "cvm role r",
	// "assume role qcs::cam::uin/1:roleName/r (base: explicit keys)". It
	// never contains a secret.
	Source() string
}

// ErrNoCredentials is returned by NewCredential when the configuration names
// no usable source.
var ErrNoCredentials = errors.New("no credential source: set secret keys, a profile file or a CVM role")

// CAM names: role names and STS session names.
var (
	roleNamePattern    = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,128}$`)
)

// NewCredential returns the credential cfg describes. Temporary credentials
// (CVM role, AssumeRole) are fetched before it returns, so a
// misconfiguration is an error naming the source, and every HTTP call is
// bounded by HTTPTimeout. They are then refreshed in the background before
// they expire (see refreshAt), with backoff on failure while the old keys
// are still used. ctx bounds the first fetch and the life of the refresher.
// Errors and logs never contain a secret key or token; an STS
// authentication failure matches watcher.ErrAuth.
func NewCredential(ctx context.Context, cfg CredentialConfig) (Credential, error) {
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = DefaultCredentialTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ar AssumeRoleConfig
	if cfg.AssumeRole != nil { // checked before the base costs a fetch
		var err error
		if ar, err = validateAssumeRole(*cfg.AssumeRole, cfg.STSEndpoint); err != nil {
			return nil, err
		}
	}
	base, err := newBaseCredential(ctx, cfg, log)
	if errors.Is(err, ErrNoCredentials) && cfg.AssumeRole != nil {
		return nil, fmt.Errorf("assume role %s needs base keys to call STS: %w", ar.RoleARN, err)
	}
	if err != nil {
		return nil, err
	}
	if cfg.AssumeRole == nil {
		return base, nil
	}
	cred, err := newAssumeRoleCredential(ctx, base, ar, cfg, log)
	if err != nil {
		_ = base.Close()
		return nil, err
	}
	return cred, nil
}

// newBaseCredential picks the base source by precedence and says which
// lower-precedence sources it ignores.
func newBaseCredential(ctx context.Context, cfg CredentialConfig, log *slog.Logger) (Credential, error) {
	switch {
	case cfg.SecretID != "" || cfg.SecretKey != "":
		if cfg.SecretID == "" || cfg.SecretKey == "" {
			return nil, errors.New("explicit keys: both secret id and secret key are needed")
		}
		warnIgnored(log, "explicit keys", cfg.ProfileFile != "", cfg.CVMRole != "")
		return newStaticCredential("explicit keys", cfg.SecretID, cfg.SecretKey), nil
	case cfg.ProfileFile != "":
		warnIgnored(log, "profile file", false, cfg.CVMRole != "")
		return loadProfile(cfg.ProfileFile, cfg.Profile, cfg.AllowInsecureFile)
	case cfg.CVMRole != "":
		return newCVMRoleCredential(ctx, cfg, log)
	}
	return nil, ErrNoCredentials
}

func warnIgnored(log *slog.Logger, used string, profile, role bool) {
	var ignored []string
	if profile {
		ignored = append(ignored, "profile file")
	}
	if role {
		ignored = append(ignored, "cvm role")
	}
	if len(ignored) > 0 {
		log.Warn("credential sources ignored: a higher-precedence source is set",
			slog.String("used", used), slog.Any("ignored", ignored))
	}
}

// keys is one immutable set of credentials. A new set replaces the old one
// whole, so a reader never sees an id of one set with the key of another.
type keys struct {
	id, key, token string
	expires        time.Time // zero for permanent keys
	issued         time.Time // local time of arrival
}

// staticCredential holds permanent keys.
type staticCredential struct {
	source string
	k      keys
}

func newStaticCredential(source, id, key string) *staticCredential {
	return &staticCredential{source: source, k: keys{id: id, key: key}}
}

var _ Credential = (*staticCredential)(nil)

func (c *staticCredential) GetSecretId() string  { return c.k.id }
func (c *staticCredential) GetSecretKey() string { return c.k.key }
func (c *staticCredential) GetToken() string     { return "" }
func (c *staticCredential) GetCredential() (string, string, string) {
	return c.k.id, c.k.key, ""
}
func (c *staticCredential) Close() error   { return nil }
func (c *staticCredential) Source() string { return c.source }

// String, GoString and LogValue keep the keys out of fmt and slog output.
func (c *staticCredential) String() string       { return c.source }
func (c *staticCredential) GoString() string     { return "cvm.Credential(" + c.source + ")" }
func (c *staticCredential) LogValue() slog.Value { return slog.StringValue(c.source) }

// validateAssumeRole fills in the defaults of ar and checks it and the STS
// endpoint.
func validateAssumeRole(ar AssumeRoleConfig, stsEndpoint string) (AssumeRoleConfig, error) {
	if ar.RoleARN == "" {
		return ar, errors.New("assume role: role arn is empty")
	}
	if stsEndpoint != "" {
		if _, _, err := ParseEndpoint(stsEndpoint); err != nil {
			return ar, fmt.Errorf("assume role %s: sts %w", ar.RoleARN, err)
		}
	}
	if ar.SessionName == "" {
		ar.SessionName = "cvmwatch"
	}
	if !sessionNamePattern.MatchString(ar.SessionName) {
		return ar, fmt.Errorf("assume role %s: session name %q: want 2-128 characters of A-Z a-z 0-9 _+=,.@-", ar.RoleARN, ar.SessionName)
	}
	if ar.Duration == 0 {
		ar.Duration = DefaultAssumeRoleDuration
	}
	if ar.Duration < MinAssumeRoleDuration || ar.Duration > MaxAssumeRoleDuration || ar.Duration%time.Second != 0 {
		return ar, fmt.Errorf("assume role %s: duration %v: want whole seconds within %v..%v", ar.RoleARN, ar.Duration, MinAssumeRoleDuration, MaxAssumeRoleDuration)
	}
	if ar.Region == "" {
		ar.Region = DefaultSTSRegion
	}
	return ar, nil
}
