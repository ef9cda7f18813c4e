package main

import (
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// EnrichConfig says whether and how events carry the instance's identity
// and the operation behind them (data.instance, data.operation), fetched
// with DescribeInstances on its own quota.
type EnrichConfig struct {
	// Enabled turns enrichment on (the default); false turns off all of
	// it: no DescribeInstances call, events without data.instance.
	Enabled bool `yaml:"enabled"`
	// Timeout bounds the enrichment of one scan's events, retries
	// included: events are never held longer; past it they go out without
	// data.instance.
	Timeout Duration `yaml:"timeout"`
	// RateLimit is DescribeInstances requests per second per (credential,
	// endpoint): its own quota, apart from poll.rate_limit's.
	RateLimit float64 `yaml:"rate_limit"`
	// Refresh is how often every instance's enrichment is refreshed, so
	// events carry current names and tags.
	Refresh Duration `yaml:"refresh"`
	// RefreshRate is the requests per second the refresh may take of
	// rate_limit (a fraction of the quota, so events' enrichment is never
	// starved by it).
	RefreshRate float64 `yaml:"refresh_rate"`
}

// The enrich section's defaults, which the README documents.
const (
	defaultEnrichRateLimit   = 35.0
	defaultEnrichRefreshRate = 4.0
)

// defaultEnrich is the enrich section of a file that leaves it out.
func defaultEnrich() EnrichConfig {
	return EnrichConfig{
		Enabled:     true,
		Timeout:     Duration(watcher.DefaultEnrichTimeout),
		RateLimit:   defaultEnrichRateLimit,
		Refresh:     Duration(watcher.DefaultEnrichRefresh),
		RefreshRate: defaultEnrichRefreshRate,
	}
}

// validate reports the section's problems under key. No zero is a value
// here: enabled: false is how enrichment is turned off.
func (e EnrichConfig) validate(key string) configErrors {
	var errs configErrors
	if d := e.Timeout.D(); d < 100*time.Millisecond || d > 5*time.Minute {
		errs.add(key+".timeout", "%v must be within [100ms, 5m]", d)
	}
	if r := e.RateLimit; !(r > 0 && r <= 1000) { // NaN included
		errs.add(key+".rate_limit", "%v must be in (0, 1000] requests per second (the documented quota is 40)", r)
	}
	if d := e.Refresh.D(); d < time.Minute {
		errs.add(key+".refresh", "%v is shorter than 1m", d)
	}
	if r := e.RefreshRate; !(r > 0 && r <= e.RateLimit) {
		errs.add(key+".refresh_rate", "%v must be in (0, %s.rate_limit (%v)] requests per second", r, key, e.RateLimit)
	}
	return errs
}
