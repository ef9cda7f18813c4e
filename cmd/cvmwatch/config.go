package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the daemon's configuration: one YAML file, strictly decoded.
// Every key is documented in configs/cvmwatch.example.yaml.
type Config struct {
	// allowInsecure relaxes the permission checks of files holding secrets
	// (--allow-insecure-permissions).
	allowInsecure bool
	// literalSecrets names, by key, the secrets written in the file itself
	// (not ${VAR}): such a file must not be readable by others.
	literalSecrets []string
	// warnings are what loading could not check here (see checkFiles).
	warnings []string

	DataDir  string          `yaml:"data_dir"`
	Accounts []AccountConfig `yaml:"accounts"`
	Poll     PollConfig      `yaml:"poll"`
	Events   EventsConfig    `yaml:"events"`
	NATS     NATSConfig      `yaml:"nats"`
	HTTP     HTTPConfig      `yaml:"http"`
	Log      LogConfig       `yaml:"log"`
}

// AccountConfig is one Tencent Cloud account (or sub-account) and the
// regions to watch in it.
type AccountConfig struct {
	// Name is the account's token in subjects and events.
	Name string `yaml:"name"`
	// Regions lists regions, or is "all": every region where the Region API
	// offers CVM, re-resolved every poll.region_refresh.
	Regions RegionList `yaml:"regions"`
	// Endpoint overrides the API host, e.g. http://127.0.0.1:9000 for the
	// simulator. It also serves the Region API unless RegionEndpoint is set.
	Endpoint       string `yaml:"endpoint"`
	RegionEndpoint string `yaml:"region_endpoint"`
	// AllowInsecureEndpoint accepts a plain http:// endpoint that is not on
	// loopback (requests are signed, but readable on the wire).
	AllowInsecureEndpoint bool `yaml:"allow_insecure_endpoint"`
	// Interval overrides poll.interval for this account's targets.
	Interval Duration `yaml:"interval"`
	// Credentials are explicit keys; absent means the SDK's default chain
	// (environment, profile file, CVM role).
	Credentials *CredentialsConfig `yaml:"credentials,omitempty"`
}

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
	RoleARN     string   `yaml:"role_arn"`
	SessionName string   `yaml:"session_name"`
	Duration    Duration `yaml:"duration"`
	ExternalID  string   `yaml:"external_id"`
	Region      string   `yaml:"region"`
}

// PollConfig says how often and how fast to call the API.
type PollConfig struct {
	Interval Duration `yaml:"interval"`
	// RateLimit is requests per second per (account, API).
	RateLimit float64 `yaml:"rate_limit"`
	// PageConcurrency bounds the pages of one scan in flight.
	PageConcurrency int `yaml:"page_concurrency"`
	// Jitter delays each target's first scan by up to this fraction of the
	// interval, so targets do not all fire at once.
	Jitter float64 `yaml:"jitter"`
	// MaxConcurrentScans caps the targets scanned at once (0: no cap).
	MaxConcurrentScans int `yaml:"max_concurrent_scans"`
	// RegionRefresh is how often `regions: all` is resolved again.
	RegionRefresh Duration `yaml:"region_refresh"`
}

// EventsConfig tunes how observations become events.
type EventsConfig struct {
	AnnounceBaseline   bool     `yaml:"announce_baseline"`
	ConfirmScans       int      `yaml:"confirm_scans"`
	MassFraction       float64  `yaml:"mass_fraction"`
	MassMinInstances   int      `yaml:"mass_min_instances"`
	MassConfirmScans   int      `yaml:"mass_confirm_scans"`
	TombstoneRetention Duration `yaml:"tombstone_retention"`
}

// NATSConfig says where events go. An empty URL starts an embedded server.
type NATSConfig struct {
	URL           string `yaml:"url"`
	SubjectPrefix string `yaml:"subject_prefix"`
	Stream        string `yaml:"stream"`
	// Mode is "jetstream" (default: durable, deduplicated) or "core" (for
	// servers without JetStream: no persistence, no dedup).
	Mode       string   `yaml:"mode"`
	MaxAge     Duration `yaml:"max_age"`
	Duplicates Duration `yaml:"duplicates"`
	// Listen is the embedded server's address (used when URL is empty).
	Listen string `yaml:"listen"`

	Token        Secret    `yaml:"token"`
	User         string    `yaml:"user"`
	Password     Secret    `yaml:"password"`
	CredsFile    string    `yaml:"creds_file"`
	NKeySeedFile string    `yaml:"nkey_seed_file"`
	TLS          TLSConfig `yaml:"tls"`
}

// MarshalYAML shows each server of URL with its password (or token)
// redacted, as a Secret shows itself: URL is a plain string, and
// check-config prints the effective configuration.
func (n NATSConfig) MarshalYAML() (any, error) {
	type plain NATSConfig // its own fields, without this method
	p := plain(n)
	p.URL = redactURLs(n.URL)
	return p, nil
}

// TLSConfig is the client side of TLS to NATS.
type TLSConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// HTTPConfig is where metrics and health endpoints are served.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
}

// LogConfig shapes the logs.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Secret is a configuration value that is never printed: fmt, slog and YAML
// output all show it redacted. Reveal returns the value.
type Secret string

const redacted = "<redacted>"

func (s Secret) String() string   { return mask(s) }
func (s Secret) GoString() string { return mask(s) }

// MarshalYAML keeps secrets out of check-config output.
func (s Secret) MarshalYAML() (any, error) { return mask(s), nil }

// Reveal returns the secret itself, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

func mask(s Secret) string {
	if s == "" {
		return ""
	}
	return redacted
}

// RegionList is a list of region names, or the single word "all".
type RegionList []string

// All reports whether the list is "all".
func (r RegionList) All() bool { return len(r) == 1 && r[0] == "all" }

// UnmarshalYAML reads "all" or a list of names.
func (r *RegionList) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Value == "all":
		*r = RegionList{"all"}
		return nil
	case n.Kind == yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		*r = names
		return nil
	}
	return fmt.Errorf(`want a list of regions or "all"`)
}

// MarshalYAML writes "all" or the list.
func (r RegionList) MarshalYAML() (any, error) {
	if r.All() {
		return "all", nil
	}
	return []string(r), nil
}

// Duration is a time.Duration written as "30s", "5m", "168h".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 30s")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration like 30s, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LoadConfig reads, expands, decodes, defaults and validates the file at
// path, and checks the files it names (see checkFiles). Every problem found
// is reported, each naming its key. A file that holds a secret literally is
// refused when group or others can read it, unless allowInsecure (as
// OpenSSH refuses a readable private key).
func LoadConfig(path string, allowInsecure bool) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return loadConfig(path, raw, os.LookupEnv, allowInsecure)
}

// loadConfig is LoadConfig on the bytes read from path.
func loadConfig(path string, raw []byte, lookup func(string) (string, bool), allowInsecure bool) (*Config, error) {
	cfg, err := decodeConfig(raw, lookup, nil)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// The named files are checked here too, not only when run opens them,
	// so that check-config passes no config that run refuses.
	fileErrs, warnings := cfg.checkFiles(allowInsecure, false)
	cfg.warnings = warnings
	if problems := append(cfg.validate(), fileErrs...); len(problems) > 0 {
		return nil, fmt.Errorf("config %s: %w", path, problems)
	}
	if err := checkLiteralSecrets(path, cfg.literalSecrets, allowInsecure); err != nil {
		return nil, err
	}
	cfg.allowInsecure = allowInsecure
	return cfg, nil
}

// stateConfig is what `cvmwatch state` reads of a config file.
type stateConfig struct {
	// HTTPListen is where to ask the running daemon.
	HTTPListen string
	// DataDir holds the database to read when no daemon answers.
	DataDir string
}

// loadStateConfig reads only what state uses of the file at path. A ${VAR}
// in any other key may be unset: on a host where the daemon's secrets live
// only in its service's environment, an operator must still be able to
// look at the state. So the other keys are neither required to expand nor
// validated (which is also why no Config escapes: it is not fit to run).
// The file is still strictly decoded, and refused when it holds a literal
// secret that others can read.
func loadStateConfig(path string, allowInsecure bool) (stateConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return stateConfig{}, fmt.Errorf("config: %w", err)
	}
	needed := func(key string) bool { return key == "data_dir" || key == "http.listen" }
	cfg, err := decodeConfig(raw, os.LookupEnv, func(key string) bool { return !needed(key) })
	if err != nil {
		return stateConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	if _, _, err := net.SplitHostPort(cfg.HTTP.Listen); err != nil {
		return stateConfig{}, fmt.Errorf("config %s: http.listen: %w", path, err)
	}
	if err := checkLiteralSecrets(path, cfg.literalSecrets, allowInsecure); err != nil {
		return stateConfig{}, err
	}
	return stateConfig{HTTPListen: cfg.HTTP.Listen, DataDir: cfg.DataDir}, nil
}

// checkLiteralSecrets refuses the config file at path when it holds the
// secrets named (written in it, not ${VAR}) and group or others can read
// it, unless allowInsecure.
func checkLiteralSecrets(path string, secrets []string, allowInsecure bool) error {
	if len(secrets) == 0 || allowInsecure {
		return nil
	}
	return checkPrivateOr(path, "holds "+strings.Join(secrets, ", "), "take the secrets from the environment (${VAR})")
}

// checkPrivate refuses a file that group or others may read; why says what
// secret it holds.
func checkPrivate(path, why string) error { return checkPrivateOr(path, why, "") }

// checkPrivateOr is checkPrivate offering one more remedy before the flag.
func checkPrivateOr(path, why, remedy string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if remedy != "" {
			remedy += ", or "
		}
		return fmt.Errorf("%s %s but its permissions %04o let others read it: chmod 600 %s, or %spass --allow-insecure-permissions",
			path, why, perm, path, remedy)
	}
	return nil
}

// ParseConfig is LoadConfig on bytes, with lookup for ${VAR} expansion, and
// without looking at the files the config names.
func ParseConfig(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg, err := decodeConfig(raw, lookup, nil)
	if err != nil {
		return nil, err
	}
	if problems := cfg.validate(); len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// decodeConfig reads, expands, decodes and defaults raw, without
// validating it. An unset ${VAR} is an error, unless optional(key) says the
// caller can do without that key: the key is then left out, as if it were
// not written (optional may be nil: every key is required).
func decodeConfig(raw []byte, lookup func(string) (string, bool), optional func(key string) bool) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errEOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var problems configErrors
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	w := &walker{lookup: lookup, optional: optional, lines: map[int]string{}}
	w.walk(root, typeOfConfig, "", &problems)
	if len(problems) > 0 {
		return nil, problems
	}
	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				problems = append(problems, w.locate(msg))
			}
			return nil, problems
		}
		return nil, err
	}
	cfg.applyDefaults()
	cfg.literalSecrets = w.literalSecrets
	return &cfg, nil
}

// configErrors lists every problem of a config, one per line.
type configErrors []error

func (e configErrors) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d problem(s):", len(e))
	for _, err := range e {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}
