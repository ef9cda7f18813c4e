package main

import (
	"strings"
	"testing"
	"time"
)

// A Config built in Go can turn enrichment off: applyDefaults fills only
// what was not given. A file behaves as before.
func TestEnrichEnabledFalseSurvivesDefaults(t *testing.T) {
	off := false
	c := &Config{Accounts: []AccountConfig{{Name: "prod", Regions: RegionList{"ap-guangzhou"}}}, Enrich: EnrichConfig{Enabled: &off}}
	c.applyDefaults()
	if c.Enrich.On() {
		t.Fatal("enrich.enabled false in Go was turned back on by applyDefaults")
	}
	c = &Config{Accounts: []AccountConfig{{Name: "prod", Regions: RegionList{"ap-guangzhou"}}}}
	c.applyDefaults()
	if !c.Enrich.On() || c.Enrich.Actor {
		t.Fatalf("a Go config that leaves enrich out: on %v, actor %v; want on, no actor", c.Enrich.On(), c.Enrich.Actor)
	}
	for raw, want := range map[string]bool{"": true, "enrich: {enabled: false}\n": false, "enrich: {enabled: true}\n": true, "enrich: {timeout: 5s}\n": true} {
		cfg, err := ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\n"+raw), env(nil))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if got := cfg.Enrich.On(); got != want {
			t.Errorf("%q: enrichment on = %v, want %v", raw, got, want)
		}
	}
}

func TestEnrichActorKeys(t *testing.T) {
	cfg, err := ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou], audit_endpoint: http://127.0.0.1:9}]\n"+
		"enrich: {actor: true, actor_wait: 2s, actor_horizon: 1h, actor_rate_limit: 10}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Enrich
	if !e.Actor || e.ActorWait.D() != 2*time.Second || e.ActorHorizon.D() != time.Hour || e.ActorRateLimit != 10 ||
		cfg.Accounts[0].AuditEndpoint != "http://127.0.0.1:9" {
		t.Fatalf("enrich = %+v, audit endpoint %q", e, cfg.Accounts[0].AuditEndpoint)
	}
	cfg, err = ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Enrich; e.Actor || e.ActorWait.D() != 30*time.Second || e.ActorHorizon.D() != 15*time.Minute || e.ActorRateLimit != 15 {
		t.Fatalf("defaults = %+v, want actor off, 30s, 15m, 15/s", e)
	}
	for raw, want := range map[string]string{
		"enrich: {actor_wait: 0s}\n":                                                          "enrich.actor_wait: 0s must be within [100ms, 5m]",
		"enrich: {actor_wait: 1m, actor_horizon: 30s}\n":                                      "enrich.actor_horizon: 30s must be within [enrich.actor_wait (1m0s), 24h]",
		"enrich: {actor_rate_limit: 0}\n":                                                     "enrich.actor_rate_limit: 0 must be in (0, 1000] requests per second (the documented quota is 20)",
		"accounts: [{name: x, regions: [ap-guangzhou], audit_endpoint: http://10.0.0.1:9}]\n": "accounts[0].audit_endpoint",
	} {
		acct := "accounts: [{name: prod, regions: [ap-guangzhou]}]\n"
		if strings.HasPrefix(raw, "accounts") {
			acct = ""
		}
		_, err := ParseConfig([]byte(acct+raw), env(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", raw, err, want)
		}
	}
}
