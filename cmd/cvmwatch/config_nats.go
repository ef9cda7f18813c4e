package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// NATSConfig says where events go. An empty URL starts an embedded server.
type NATSConfig struct {
	URL           string `yaml:"url"`
	SubjectPrefix string `yaml:"subject_prefix"`
	Stream        string `yaml:"stream"`
	// Mode is "jetstream" (default: durable, deduplicated) or "core" (for
	// servers without JetStream: no persistence, no dedup).
	Mode string `yaml:"mode"`
	// MaxAge is how long the stream keeps events (0: forever).
	MaxAge     Duration `yaml:"max_age"`
	Duplicates Duration `yaml:"duplicates"`
	// Replicas is the copies of every stream cvmwatch creates: 1-5, or
	// auto (3 on a JetStream cluster of at least 3 servers, else 1).
	Replicas Replicas `yaml:"replicas"`
	// ScanStream is the stream of the scan summaries (default: stream +
	// "_SCANS"); it keeps the last ScanKeep of each target for ScanMaxAge.
	ScanStream string   `yaml:"scan_stream"`
	ScanKeep   int      `yaml:"scan_keep"`
	ScanMaxAge Duration `yaml:"scan_max_age"`
	// Listen is the embedded server's address (used when URL is empty);
	// port 0 picks a free port.
	Listen string `yaml:"listen"`

	Token        Secret    `yaml:"token"`
	User         string    `yaml:"user"`
	Password     Secret    `yaml:"password"`
	CredsFile    string    `yaml:"creds_file"`
	NKeySeedFile string    `yaml:"nkey_seed_file"`
	TLS          TLSConfig `yaml:"tls"`
}

// TLSConfig is the client side of TLS to NATS.
type TLSConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// The nats section's defaults, which the README documents.
const (
	defaultSubjectPrefix = "cvm"
	defaultStream        = "CVMWATCH"
	defaultNATSListen    = "127.0.0.1:4222"
	defaultDuplicates    = 10 * time.Minute
)

// defaultNATS is the nats section of a file that leaves it out.
func defaultNATS() NATSConfig {
	return NATSConfig{
		SubjectPrefix: defaultSubjectPrefix,
		Stream:        defaultStream,
		Mode:          "jetstream",
		Listen:        defaultNATSListen,
		Duplicates:    Duration(defaultDuplicates),
		ScanKeep:      publisher.DefaultScanKeep,
		ScanMaxAge:    Duration(publisher.DefaultScanMaxAge),
	}
}

// scanStream is nats.scan_stream, or its default beside nats.stream.
func (n NATSConfig) scanStream() string {
	if n.ScanStream != "" {
		return n.ScanStream
	}
	return publisher.ScanStreamName(n.Stream)
}

// MarshalYAML shows each server of URL with its password (or token)
// redacted, as a Secret shows itself: URL is a plain string, and
// check-config prints the effective configuration.
func (n NATSConfig) MarshalYAML() (any, error) {
	type plain NATSConfig // its own fields, without this method
	p := plain(n)
	p.URL = redactURLs(n.URL)
	p.ScanStream = n.scanStream()
	return p, nil
}

// validate reports the section's problems under key. Zero is a value only
// for max_age (keep events forever) and the port of listen (a free one).
func (n NATSConfig) validate(key string) configErrors {
	var errs configErrors
	if err := watcher.ValidatePrefix(n.SubjectPrefix); err != nil {
		errs.add(key+".subject_prefix", "%v", err)
	}
	if err := watcher.ValidateToken(n.Stream); err != nil {
		errs.add(key+".stream", "%s is not a stream name: %v", watcher.Quote(n.Stream), err)
	}
	switch n.Mode {
	case "jetstream", "core":
	default:
		errs.add(key+".mode", "%q must be jetstream or core", n.Mode)
	}
	if n.URL == "" && n.Mode == "core" {
		errs.add(key+".mode", "core needs %s.url: the embedded server always has JetStream", key)
	}
	if n.MaxAge.D() < 0 {
		errs.add(key+".max_age", "must not be negative")
	}
	if n.Duplicates.D() <= 0 {
		errs.add(key+".duplicates", "must be positive")
	} else if n.MaxAge.D() > 0 && n.Duplicates.D() > n.MaxAge.D() {
		errs.add(key+".duplicates", "%v must not exceed %s.max_age (%v)", n.Duplicates.D(), key, n.MaxAge.D())
	}
	if err := watcher.ValidateToken(n.scanStream()); err != nil {
		errs.add(key+".scan_stream", "%s is not a stream name: %v", watcher.Quote(n.scanStream()), err)
	} else if n.scanStream() == n.Stream {
		errs.add(key+".scan_stream", "must differ from %s.stream (%s)", key, n.Stream)
	}
	if n.ScanKeep < 1 {
		errs.add(key+".scan_keep", "%d must be at least 1", n.ScanKeep)
	}
	if n.ScanMaxAge.D() < time.Minute {
		errs.add(key+".scan_max_age", "%v is shorter than 1m", n.ScanMaxAge.D())
	}
	if err := publisher.CheckReplicas(int(n.Replicas)); err != nil {
		errs.add(key+".replicas", "%d must be 1 to %d, or auto", n.Replicas, publisher.MaxReplicas)
	}
	if _, _, err := net.SplitHostPort(n.Listen); err != nil {
		errs.add(key+".listen", "%v", err)
	} else if n.URL == "" && !isLoopbackHost(n.Listen) && n.Token == "" && n.User == "" {
		// Anyone who can reach it could read, forge or delete the events.
		errs.add(key+".listen", "%s lets other hosts reach the embedded NATS server: set %s.token (or %s.user and %s.password), or listen on loopback", n.Listen, key, key, key)
	}
	for i, u := range splitURLs(n.URL) {
		if !strings.Contains(u, "://") && !strings.Contains(u, ":") {
			errs.add(key+".url", "server %d (%s) needs a port or a scheme", i+1, redactURL(u))
		}
	}
	if (n.User == "") != (n.Password == "") {
		errs.add(key+".user", "user and password go together")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		errs.add(key+".tls.cert_file", "cert_file and key_file go together")
	}
	return errs
}

// Replicas is nats.replicas: a replica count, 1 to publisher.MaxReplicas,
// or "auto" (the zero value: left out means auto). An explicit 0 is
// refused, not taken for auto.
type Replicas int

// autoReplicas is how nats.replicas writes publisher.AutoReplicas.
const autoReplicas = "auto"

// UnmarshalYAML reads "auto" or a count from 1 to publisher.MaxReplicas.
func (r *Replicas) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == autoReplicas {
		*r = publisher.AutoReplicas
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < 1 || v > publisher.MaxReplicas {
		return fmt.Errorf("want auto or a replica count from 1 to %d", publisher.MaxReplicas) // value not echoed: it may be a misplaced secret
	}
	*r = Replicas(v)
	return nil
}

// MarshalYAML writes "auto" or the count, as check-config shows it: it
// does not connect, so it cannot say what auto will choose.
func (r Replicas) MarshalYAML() (any, error) {
	if r == publisher.AutoReplicas {
		return autoReplicas, nil
	}
	return int(r), nil
}

// String is the value as written, for the logs.
func (r Replicas) String() string {
	if r == publisher.AutoReplicas {
		return autoReplicas
	}
	return strconv.Itoa(int(r))
}

// splitURLs splits the comma-separated nats.url.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// redactURLs is nats.url with every server's password (or token)
// redacted.
func redactURLs(s string) string {
	urls := splitURLs(s)
	for i, u := range urls {
		urls[i] = redactURL(u)
	}
	return strings.Join(urls, ",")
}

// redactURL hides the password (or token) in a NATS server URL's user info
// and keeps the user name: nats://alice:<redacted>@host:4222.
func redactURL(u string) string {
	prefix, info, host, ok := cutUserInfo(u)
	if !ok || urlSecret(u) == "" {
		return u
	}
	if user, _, hasPass := strings.Cut(info, ":"); hasPass {
		return prefix + user + ":" + redacted + "@" + host
	}
	return prefix + redacted + "@" + host
}

// urlSecret returns what authenticates in a NATS server URL's user info:
// the password of user:password, or else the whole user info, which nats.go
// sends as a token. It returns "" if there is none.
func urlSecret(u string) string {
	_, info, _, ok := cutUserInfo(u)
	if !ok {
		return ""
	}
	if _, pass, hasPass := strings.Cut(info, ":"); hasPass {
		return pass
	}
	return info
}

// cutUserInfo splits a NATS server URL into the scheme ("nats://", or ""
// since nats.go accepts a URL without one), the user info and the rest.
// The user info ends at the last "@", so that an "@" left unescaped in a
// password is hidden with it rather than shown.
func cutUserInfo(u string) (prefix, info, rest string, ok bool) {
	rest = u
	if i := strings.Index(u, "://"); i >= 0 {
		prefix, rest = u[:i+3], u[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", "", u, false
	}
	return prefix, rest[:at], rest[at+1:], true
}
