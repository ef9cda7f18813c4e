package main

import (
	"fmt"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

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
	// AuditEndpoint is the CloudAudit host for enrich.actor (default:
	// Endpoint if set, as the simulator serves LookUpEvents too, else
	// cloudaudit.tencentcloudapi.com).
	AuditEndpoint string `yaml:"audit_endpoint"`
	// AllowInsecureEndpoint accepts a plain http:// endpoint that is not on
	// loopback (requests are signed, but readable on the wire).
	AllowInsecureEndpoint bool `yaml:"allow_insecure_endpoint"`
	// Interval overrides poll.interval for this account's targets; zero
	// (left out) means poll.interval, and is left out of check-config's
	// output so that the output is a config that loads.
	Interval Duration `yaml:"interval,omitempty"`
	// Credentials are explicit keys; absent means the SDK's default chain
	// (environment, profile file, CVM role).
	Credentials *CredentialsConfig `yaml:"credentials,omitempty"`
}

// validateAccounts reports the problems of the accounts: there must be
// one, each valid, no two of the same name. written holds the keys a file
// gives (nil for accounts built in Go).
func validateAccounts(accounts []AccountConfig, written keySet) configErrors {
	var errs configErrors
	if len(accounts) == 0 {
		errs.add("accounts", "at least one account is required")
	}
	names := map[string]int{}
	for i, a := range accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if j, dup := names[a.Name]; dup && watcher.ValidateToken(a.Name) == nil {
			errs.add(key+".name", "%q is also the name of accounts[%d]", a.Name, j)
		}
		names[a.Name] = i
		errs = append(errs, a.validate(key, written)...)
	}
	return errs
}

// endpointKey is an endpoint override and its key under accounts[i].
type endpointKey struct{ key, value string }

// validate reports the account's own problems under key. Its interval,
// when given, is never zero: left out, it is poll.interval.
func (a AccountConfig) validate(key string, written keySet) configErrors {
	var errs configErrors
	if err := watcher.ValidateToken(a.Name); err != nil {
		errs.add(key+".name", "%s is not usable in a subject: %v", watcher.Quote(a.Name), err)
	}
	if d := a.Interval.D(); (d != 0 || written[key+".interval"]) && d < time.Second {
		errs.add(key+".interval", "%v is shorter than 1s", d)
	}
	if len(a.Regions) == 0 {
		errs.add(key+".regions", `at least one region (or "all") is required`)
	}
	regions := map[string]bool{}
	for j, r := range a.Regions {
		rk := fmt.Sprintf("%s.regions[%d]", key, j)
		if r == "all" && !a.Regions.All() {
			errs.add(rk, `"all" stands alone: regions: all`)
			continue
		}
		if err := watcher.ValidateToken(r); err != nil {
			errs.add(rk, "%s is not a region name: %v", watcher.Quote(r), err)
		} else if regions[r] {
			errs.add(rk, "%q is listed twice", r)
		}
		regions[r] = true
	}
	// STS answers carry temporary secret keys: its endpoint needs the
	// same opt-in to plain HTTP as the API's.
	endpoints := []endpointKey{{"endpoint", a.Endpoint}, {"region_endpoint", a.RegionEndpoint}, {"audit_endpoint", a.AuditEndpoint}}
	if a.Credentials != nil {
		endpoints = append(endpoints, endpointKey{"credentials.sts_endpoint", a.Credentials.STSEndpoint})
	}
	for _, ep := range endpoints {
		if ep.value == "" {
			continue
		}
		host, scheme, err := cvm.ParseEndpoint(ep.value)
		if err != nil {
			errs.add(key+"."+ep.key, "%v", err)
		} else if scheme == "HTTP" && !isLoopbackHost(host) && !a.AllowInsecureEndpoint {
			errs.add(key+"."+ep.key, "%q is plain HTTP to a non-loopback host: use https, or set %s.allow_insecure_endpoint: true", ep.value, key)
		}
	}
	if a.Credentials != nil {
		errs = append(errs, a.Credentials.validate(key+".credentials", written)...)
	}
	return errs
}
