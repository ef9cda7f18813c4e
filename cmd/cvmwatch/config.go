package main

import (
	"bytes"
	"fmt"
	"net"
	"reflect"
	"strings"
)

// Config is the daemon's configuration: one YAML file, strictly decoded.
// Every key is documented in configs/cvmwatch.example.yaml. Each section's
// type, defaults and checks live in a file of their own (config_poll.go,
// config_nats.go, ...); loading is in config_load.go.
//
// A key left out of the file (or null, or an empty string) gets its
// default; a number or duration written in the file is taken as written,
// zero included, and refused where zero means nothing (see validate).
type Config struct {
	// allowInsecure relaxes the permission checks of files holding secrets
	// (--allow-insecure-permissions).
	allowInsecure bool
	// literalSecrets names, by key, the secrets written in the file itself
	// (not ${VAR}): such a file must not be readable by others.
	literalSecrets []string
	// warnings are what loading could not check here (see checkFiles).
	warnings []string
	// written holds the keys the file gives a value; nil for a Config
	// built in Go.
	written keySet

	DataDir  string          `yaml:"data_dir"`
	Accounts []AccountConfig `yaml:"accounts"`
	Poll     PollConfig      `yaml:"poll"`
	Events   EventsConfig    `yaml:"events"`
	Enrich   EnrichConfig    `yaml:"enrich"`
	NATS     NATSConfig      `yaml:"nats"`
	HTTP     HTTPConfig      `yaml:"http"`
	Log      LogConfig       `yaml:"log"`
	Notify   NotifyConfig    `yaml:"notify"`
	HA       HAConfig        `yaml:"ha"`
}

// defaultDataDir is data_dir's default, which the README documents.
const defaultDataDir = "/var/lib/cvmwatch"

// defaultConfig is the configuration of a file that gives no key but its
// accounts: a file is decoded over it, so a key left out keeps its value
// here and a key written replaces it, zero included.
func defaultConfig() Config {
	return Config{
		DataDir: defaultDataDir,
		Poll:    defaultPoll(),
		Events:  defaultEvents(),
		Enrich:  defaultEnrich(),
		NATS:    defaultNATS(),
		HTTP:    defaultHTTP(),
		Log:     defaultLog(),
		Notify:  defaultNotify(),
		HA:      defaultHA(),
	}
}

// applyDefaults gives every zero key of a Config built in Go (demo, tests)
// its default from defaultConfig: in Go, unlike in a file, a zero field is
// one not given.
func (c *Config) applyDefaults() {
	fillZeros(reflect.ValueOf(c).Elem(), reflect.ValueOf(defaultConfig()))
}

// fillZeros sets each zero exported field of the struct dst to def's,
// looking into nested structs.
func fillZeros(dst, def reflect.Value) {
	for i := range dst.NumField() {
		f := dst.Field(i)
		switch {
		case !f.CanSet():
		case f.Kind() == reflect.Struct:
			fillZeros(f, def.Field(i))
		case f.IsZero():
			f.Set(def.Field(i))
		}
	}
}

// validate reports every problem, each naming its key. Each section checks
// its own keys; a key's zero is refused by the same range check as any
// other value out of range, except for the keys where zero means
// something (documented in the README): poll.jitter, poll.max_concurrent_scans,
// events.tombstone_retention, nats.max_age, and port 0 in a listen address.
func (c *Config) validate() configErrors {
	var errs configErrors
	errs = append(errs, validateAccounts(c.Accounts, c.written)...)
	errs = append(errs, c.Poll.validate("poll")...)
	errs = append(errs, c.Events.validate("events")...)
	errs = append(errs, c.Enrich.validate("enrich")...)
	errs = append(errs, c.NATS.validate("nats")...)
	errs = append(errs, c.HTTP.validate("http")...)
	errs = append(errs, c.Log.validate("log")...)
	errs = append(errs, c.Notify.validate("notify", c.written)...)
	errs = append(errs, c.HA.validate("ha", c.NATS)...)
	return errs
}

// keySet holds key paths, such as "accounts[0].interval".
type keySet map[string]bool

// configErrors lists every problem of a config, one per line.
type configErrors []error

// add appends the problem at key, described by format and args.
func (e *configErrors) add(key, format string, args ...any) {
	*e = append(*e, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
}

func (e configErrors) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d problem(s):", len(e))
	for _, err := range e {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
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
