package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// Defaults the README documents.
const (
	defaultDataDir       = "/var/lib/cvmwatch"
	defaultInterval      = 30 * time.Second
	defaultRateLimit     = 35.0
	defaultSubjectPrefix = "cvm"
	defaultStream        = "CVMWATCH"
	defaultNATSListen    = "127.0.0.1:4222"
	defaultHTTPListen    = "127.0.0.1:9090"
	defaultDuplicates    = 10 * time.Minute
	defaultJitter        = 0.2
)

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if c.Poll.Interval == 0 {
		c.Poll.Interval = Duration(defaultInterval)
	}
	if c.Poll.RateLimit == 0 {
		c.Poll.RateLimit = defaultRateLimit
	}
	if c.Poll.PageConcurrency == 0 {
		c.Poll.PageConcurrency = cvm.DefaultPageConcurrency
	}
	if c.Poll.Jitter == 0 {
		c.Poll.Jitter = defaultJitter
	}
	if c.Poll.RegionRefresh == 0 {
		c.Poll.RegionRefresh = Duration(time.Hour)
	}
	p := watcher.DefaultPolicy()
	e := &c.Events
	if e.ConfirmScans == 0 {
		e.ConfirmScans = p.ConfirmScans
	}
	if e.MassFraction == 0 {
		e.MassFraction = p.MassFraction
	}
	if e.MassMinInstances == 0 {
		e.MassMinInstances = p.MassMinInstances
	}
	if e.MassConfirmScans == 0 {
		e.MassConfirmScans = p.MassConfirmScans
	}
	if e.TombstoneRetention == 0 {
		e.TombstoneRetention = Duration(p.TombstoneRetention)
	}
	n := &c.NATS
	if n.SubjectPrefix == "" {
		n.SubjectPrefix = defaultSubjectPrefix
	}
	if n.Stream == "" {
		n.Stream = defaultStream
	}
	if n.Mode == "" {
		n.Mode = "jetstream"
	}
	if n.Listen == "" {
		n.Listen = defaultNATSListen
	}
	if n.Duplicates == 0 {
		n.Duplicates = Duration(defaultDuplicates)
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = defaultHTTPListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// endpointKey is an endpoint override and its key under accounts[i].
type endpointKey struct{ key, value string }

// validate reports every problem, each naming its key.
func (c *Config) validate() configErrors {
	var errs configErrors
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if len(c.Accounts) == 0 {
		bad("accounts", "at least one account is required")
	}
	names := map[string]int{}
	for i, a := range c.Accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if err := watcher.ValidateToken(a.Name); err != nil {
			bad(key+".name", "%s is not usable in a subject: %v", watcher.Quote(a.Name), err)
		} else if j, dup := names[a.Name]; dup {
			bad(key+".name", "%q is also the name of accounts[%d]", a.Name, j)
		}
		names[a.Name] = i
		if d := a.Interval.D(); d != 0 && d < time.Second {
			bad(key+".interval", "%v is shorter than 1s", d)
		}
		if len(a.Regions) == 0 {
			bad(key+".regions", `at least one region (or "all") is required`)
		}
		regions := map[string]bool{}
		for j, r := range a.Regions {
			if r == "all" && !a.Regions.All() {
				bad(fmt.Sprintf("%s.regions[%d]", key, j), `"all" stands alone: regions: all`)
				continue
			}
			rk := fmt.Sprintf("%s.regions[%d]", key, j)
			if err := watcher.ValidateToken(r); err != nil {
				bad(rk, "%s is not a region name: %v", watcher.Quote(r), err)
			} else if regions[r] {
				bad(rk, "%q is listed twice", r)
			}
			regions[r] = true
		}
		// STS answers carry temporary secret keys: its endpoint needs the
		// same opt-in to plain HTTP as the API's.
		endpoints := []endpointKey{{"endpoint", a.Endpoint}, {"region_endpoint", a.RegionEndpoint}}
		if a.Credentials != nil {
			endpoints = append(endpoints, endpointKey{"credentials.sts_endpoint", a.Credentials.STSEndpoint})
		}
		for _, ep := range endpoints {
			if ep.value == "" {
				continue
			}
			host, scheme, err := cvm.ParseEndpoint(ep.value)
			if err != nil {
				bad(key+"."+ep.key, "%v", err)
			} else if scheme == "HTTP" && !isLoopbackHost(host) && !a.AllowInsecureEndpoint {
				bad(key+"."+ep.key, "%q is plain HTTP to a non-loopback host: use https, or set %s.allow_insecure_endpoint: true", ep.value, key)
			}
		}
		if cr := a.Credentials; cr != nil {
			ck := key + ".credentials"
			explicit := cr.SecretID != "" || cr.SecretKey != ""
			switch {
			case explicit && cr.SecretID == "":
				bad(ck+".secret_id", "is empty (secret_key is set)")
			case explicit && cr.SecretKey == "":
				bad(ck+".secret_key", "is empty (secret_id is set)")
			case !explicit && cr.ProfileFile == "" && cr.CVMRole == "":
				bad(ck, "give secret_id and secret_key, profile_file, or cvm_role (or leave credentials out for the SDK's default chain)")
			}
			if n := btoi(explicit) + btoi(cr.ProfileFile != "") + btoi(cr.CVMRole != ""); n > 1 {
				bad(ck, "give only one of secret_id/secret_key, profile_file and cvm_role")
			}
			if ar := cr.AssumeRole; ar != nil {
				if ar.RoleARN == "" {
					bad(ck+".assume_role.role_arn", "is required")
				}
				if d := ar.Duration.D(); d != 0 && (d < 15*time.Minute || d > 12*time.Hour) {
					bad(ck+".assume_role.duration", "%v must be within [15m, 12h]", d)
				}
			}
		}
	}
	if d := c.Poll.Interval.D(); d < time.Second {
		bad("poll.interval", "%v is shorter than 1s", d)
	}
	if r := c.Poll.RateLimit; r <= 0 || r > 1000 {
		bad("poll.rate_limit", "%v must be in (0, 1000] requests per second (the documented quota is 40)", r)
	}
	if n := c.Poll.PageConcurrency; n < 1 || n > 64 {
		bad("poll.page_concurrency", "%d must be in [1, 64]", n)
	}
	if j := c.Poll.Jitter; j < 0 || j > 1 {
		bad("poll.jitter", "%v must be in [0, 1]", j)
	}
	if d := c.Poll.RegionRefresh.D(); d < time.Minute {
		bad("poll.region_refresh", "%v is shorter than 1m", d)
	}
	if n := c.Poll.MaxConcurrentScans; n < 0 {
		bad("poll.max_concurrent_scans", "%d must not be negative", n)
	}
	e := c.Events
	if e.ConfirmScans < 1 {
		bad("events.confirm_scans", "%d must be at least 1", e.ConfirmScans)
	}
	if e.MassFraction <= 0 || e.MassFraction > 1 {
		bad("events.mass_fraction", "%v must be in (0, 1]", e.MassFraction)
	}
	if e.MassMinInstances < 1 {
		bad("events.mass_min_instances", "%d must be at least 1", e.MassMinInstances)
	}
	if e.MassConfirmScans < e.ConfirmScans {
		bad("events.mass_confirm_scans", "%d must be at least events.confirm_scans (%d)", e.MassConfirmScans, e.ConfirmScans)
	}
	if e.TombstoneRetention.D() < 0 {
		bad("events.tombstone_retention", "must not be negative")
	}
	n := c.NATS
	if err := watcher.ValidatePrefix(n.SubjectPrefix); err != nil {
		bad("nats.subject_prefix", "%v", err)
	}
	if err := watcher.ValidateToken(n.Stream); err != nil {
		bad("nats.stream", "%s is not a stream name: %v", watcher.Quote(n.Stream), err)
	}
	switch n.Mode {
	case "jetstream", "core":
	default:
		bad("nats.mode", "%q must be jetstream or core", n.Mode)
	}
	if n.URL == "" && n.Mode == "core" {
		bad("nats.mode", "core needs nats.url: the embedded server always has JetStream")
	}
	if n.MaxAge.D() < 0 {
		bad("nats.max_age", "must not be negative")
	}
	if n.Duplicates.D() <= 0 {
		bad("nats.duplicates", "must be positive")
	} else if n.MaxAge.D() > 0 && n.Duplicates.D() > n.MaxAge.D() {
		bad("nats.duplicates", "%v must not exceed nats.max_age (%v)", n.Duplicates.D(), n.MaxAge.D())
	}
	if _, _, err := net.SplitHostPort(n.Listen); err != nil {
		bad("nats.listen", "%v", err)
	} else if n.URL == "" && !isLoopbackHost(n.Listen) && n.Token == "" && n.User == "" {
		// Anyone who can reach it could read, forge or delete the events.
		bad("nats.listen", "%s lets other hosts reach the embedded NATS server: set nats.token (or nats.user and nats.password), or listen on loopback", n.Listen)
	}
	for i, u := range splitURLs(n.URL) {
		if !strings.Contains(u, "://") && !strings.Contains(u, ":") {
			bad("nats.url", "server %d (%s) needs a port or a scheme", i+1, redactURL(u))
		}
	}
	if (n.User == "") != (n.Password == "") {
		bad("nats.user", "user and password go together")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		bad("nats.tls.cert_file", "cert_file and key_file go together")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q must be text or json", c.Log.Format)
	}
	return errs
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

// checkFiles checks the files the config names as run will use them:
// each must be a regular file, and those holding a secret must not be
// readable by group or others (unless allowInsecure). Unless mustExist, a
// file that is missing or unreadable here is only a warning: check-config
// may run on another host or as another user than the daemon, and files
// such as ${CREDENTIALS_DIRECTORY}/nats.creds exist only inside the running
// service; the daemon, where they must be, checks with mustExist.
func (c *Config) checkFiles(allowInsecure, mustExist bool) (errs configErrors, warnings []string) {
	check := func(key, path string, secret bool) {
		if path == "" {
			return
		}
		err := checkReadable(path)
		if !mustExist && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
			warnings = append(warnings, fmt.Sprintf("%s: cannot check it here (%v); it must exist and be readable where cvmwatch runs", key, err))
			return
		}
		if err == nil && secret && !allowInsecure {
			err = checkPrivate(path, "holds a secret")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	for i, a := range c.Accounts {
		if a.Credentials != nil {
			check(fmt.Sprintf("accounts[%d].credentials.profile_file", i), a.Credentials.ProfileFile, true)
		}
	}
	n := c.NATS
	check("nats.creds_file", n.CredsFile, true)
	check("nats.nkey_seed_file", n.NKeySeedFile, true)
	check("nats.tls.ca_file", n.TLS.CAFile, false)
	check("nats.tls.cert_file", n.TLS.CertFile, false)
	check("nats.tls.key_file", n.TLS.KeyFile, true)
	return errs, warnings
}

// checkReadable reports whether path is a regular file this process can
// open for reading. It reads nothing, and it stats before opening, since
// opening a FIFO would block.
func checkReadable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// isLoopbackHost reports whether host[:port] names a loopback address.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
