package main

import (
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
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
	// Hot turns on the hot set (the default): instances seen in a
	// transitional state (STOPPING, PENDING, ...) are looked up by ID every
	// HotInterval until they are stable, so their next change is seen in
	// seconds instead of at the next scan.
	Hot bool `yaml:"hot"`
	// HotInterval is the time between two lookups of the hot set.
	HotInterval Duration `yaml:"hot_interval"`
	// HotShare is the fraction of rate_limit the hot set's lookups may
	// take; the scans keep the rest, and all of it while the hot set is idle.
	HotShare float64 `yaml:"hot_share"`
	// DescribeShare is the fraction of enrich.rate_limit (the
	// DescribeInstances quota) that full scans may use to read part of
	// their pages through DescribeInstances; enrichment keeps the rest.
	// 0 turns it off: every page through DescribeInstancesStatus. Without
	// enrichment (enrich.enabled: false) it is off too.
	DescribeShare float64 `yaml:"describe_share"`
}

// The poll section's defaults, which the README documents.
const (
	defaultInterval      = 30 * time.Second
	defaultRateLimit     = 35.0
	defaultJitter        = 0.2
	defaultRegionRefresh = time.Hour
	defaultHotShare      = 0.25
)

// defaultPoll is the poll section of a file that leaves it out.
func defaultPoll() PollConfig {
	return PollConfig{
		Interval:        Duration(defaultInterval),
		RateLimit:       defaultRateLimit,
		PageConcurrency: cvm.DefaultPageConcurrency,
		Jitter:          defaultJitter,
		RegionRefresh:   Duration(defaultRegionRefresh),
		Hot:             true,
		HotInterval:     Duration(watcher.DefaultHotInterval),
		HotShare:        defaultHotShare,
		DescribeShare:   cvm.DefaultDescribeShare,
	}
}

// validate reports the section's problems under key. Zero is a value only
// for jitter (no jitter), max_concurrent_scans (no cap) and describe_share
// (scans through DescribeInstancesStatus only); hot: false is how the hot
// set is turned off.
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
	if d := p.HotInterval.D(); d < 100*time.Millisecond || d > time.Minute {
		errs.add(key+".hot_interval", "%v must be within [100ms, 1m]", d)
	}
	if f := p.HotShare; !(f > 0 && f <= 0.9) {
		errs.add(key+".hot_share", "%v must be in (0, 0.9]: the scans keep the rest of rate_limit", f)
	}
	if f := p.DescribeShare; !(f >= 0 && f <= 1) {
		errs.add(key+".describe_share", "%v must be in [0, 1] (0: scans read every page through DescribeInstancesStatus)", f)
	}
	if n := p.MaxConcurrentScans; n < 0 {
		errs.add(key+".max_concurrent_scans", "%d must not be negative", n)
	}
	return errs
}
