package main

import (
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// PollConfig says how often and how fast to call the API.
type PollConfig struct {
	Interval Duration `yaml:"interval"`
	// RateLimit is requests per second per (account, API).
	RateLimit float64 `yaml:"rate_limit"`
	// PageConcurrency bounds the pages of one scan in flight.
	PageConcurrency int `yaml:"page_concurrency"`
	// Jitter delays each target's first scan by up to this fraction of the
	// interval, so targets do not all fire at once (0: no delay).
	Jitter float64 `yaml:"jitter"`
	// MaxConcurrentScans caps the targets scanned at once (0: no cap).
	MaxConcurrentScans int `yaml:"max_concurrent_scans"`
	// RegionRefresh is how often `regions: all` is resolved again.
	RegionRefresh Duration `yaml:"region_refresh"`
}

// The poll section's defaults, which the README documents.
const (
	defaultInterval      = 30 * time.Second
	defaultRateLimit     = 35.0
	defaultJitter        = 0.2
	defaultRegionRefresh = time.Hour
)

// defaultPoll is the poll section of a file that leaves it out.
func defaultPoll() PollConfig {
	return PollConfig{
		Interval:        Duration(defaultInterval),
		RateLimit:       defaultRateLimit,
		PageConcurrency: cvm.DefaultPageConcurrency,
		Jitter:          defaultJitter,
		RegionRefresh:   Duration(defaultRegionRefresh),
	}
}

// validate reports the section's problems under key. Zero is a value only
// for jitter (no jitter) and max_concurrent_scans (no cap).
func (p PollConfig) validate(key string) configErrors {
	var errs configErrors
	if d := p.Interval.D(); d < time.Second {
		errs.add(key+".interval", "%v is shorter than 1s", d)
	}
	if r := p.RateLimit; !(r > 0 && r <= 1000) { // NaN included
		errs.add(key+".rate_limit", "%v must be in (0, 1000] requests per second (the documented quota is 40)", r)
	}
	if n := p.PageConcurrency; n < 1 || n > 64 {
		errs.add(key+".page_concurrency", "%d must be in [1, 64]", n)
	}
	if j := p.Jitter; !(j >= 0 && j <= 1) {
		errs.add(key+".jitter", "%v must be in [0, 1]", j)
	}
	if d := p.RegionRefresh.D(); d < time.Minute {
		errs.add(key+".region_refresh", "%v is shorter than 1m", d)
	}
	if n := p.MaxConcurrentScans; n < 0 {
		errs.add(key+".max_concurrent_scans", "%d must not be negative", n)
	}
	return errs
}
