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
	// it: no DescribeInstances call, events without data.instance. A
	// pointer so that a Config built in Go can say false: nil is "not
	// given" (the default, true), as a key left out of a file is.
	Enabled *bool `yaml:"enabled"`
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
	// Actor turns on data.operation.actor (off by default: it needs the
	// cloudaudit:LookUpEvents permission): who made each new operation,
	// from CloudAudit, on its own quota.
	Actor bool `yaml:"actor"`
	// ActorWait bounds how long a scan's commit waits for the actors'
	// audit records (counted from the start of its enrichment, so the
	// commit is held at most max(timeout, actor_wait) in all); an actor
	// found later comes as a follow-up event.
	ActorWait Duration `yaml:"actor_wait"`
	// ActorHorizon is how long after the event a follow-up may still come;
	// past it the lookup stops and no follow-up is published.
	ActorHorizon Duration `yaml:"actor_horizon"`
	// ActorRateLimit is LookUpEvents requests per second per (credential,
	// endpoint): its own quota of 20.
	ActorRateLimit float64 `yaml:"actor_rate_limit"`
}

// On reports whether enrichment is on: Enabled, or not given.
func (e EnrichConfig) On() bool { return e.Enabled == nil || *e.Enabled }

// The enrich section's defaults, which the README documents.
const (
	defaultEnrichRateLimit   = 35.0
	defaultEnrichRefreshRate = 4.0
	defaultActorRateLimit    = 15.0
)

// defaultEnrich is the enrich section of a file that leaves it out.
func defaultEnrich() EnrichConfig {
	on := true
	return EnrichConfig{
		Enabled:        &on,
		Timeout:        Duration(watcher.DefaultEnrichTimeout),
		RateLimit:      defaultEnrichRateLimit,
		Refresh:        Duration(watcher.DefaultEnrichRefresh),
		RefreshRate:    defaultEnrichRefreshRate,
		ActorWait:      Duration(watcher.DefaultActorWait),
		ActorHorizon:   Duration(watcher.DefaultActorHorizon),
		ActorRateLimit: defaultActorRateLimit,
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
	if d := e.ActorWait.D(); d < 100*time.Millisecond || d > 5*time.Minute {
		errs.add(key+".actor_wait", "%v must be within [100ms, 5m]", d)
	}
	if d := e.ActorHorizon.D(); d < e.ActorWait.D() || d > 24*time.Hour {
		errs.add(key+".actor_horizon", "%v must be within [%s.actor_wait (%v), 24h]", d, key, e.ActorWait.D())
	}
	if r := e.ActorRateLimit; !(r > 0 && r <= 1000) {
		errs.add(key+".actor_rate_limit", "%v must be in (0, 1000] requests per second (the documented quota is 20)", r)
	}
	return errs
}
