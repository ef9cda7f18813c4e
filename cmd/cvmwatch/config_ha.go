package main

import (
	"os"
	"strings"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// HAConfig runs this process as one of several replicas that share the
// targets through leases on the NATS cluster (see docs/DEPLOY.md, "High
// availability"). Off by default: a single process owns every target and
// keeps its state in bbolt.
type HAConfig struct {
	// Enabled turns HA on. It needs an external nats.url in jetstream
	// mode: the state of every target, the leases and the epochs are kept
	// in the cluster, not on this machine.
	Enabled bool `yaml:"enabled"`
	// ReplicaID names this replica in the leases, the logs and `cvmwatch
	// state`; unique among the replicas. Default: the host name, with every
	// character that is not a letter, digit, '-' or '_' replaced by '-'.
	ReplicaID string `yaml:"replica_id"`
	// LeaseTTL is how long a lease lives without renewal: a dead replica's
	// targets are taken over within it plus one scan. Every replica must
	// use the same.
	LeaseTTL Duration `yaml:"lease_ttl"`
}

// The ha section's defaults, which the README documents.
const (
	defaultLeaseTTL = 15 * time.Second
	minLeaseTTL     = time.Second
	maxLeaseTTL     = 10 * time.Minute
)

// defaultHA is the ha section of a file that leaves it out.
func defaultHA() HAConfig {
	return HAConfig{LeaseTTL: Duration(defaultLeaseTTL)}
}

// validate reports the section's problems under key; n is the nats
// section HA depends on. Nothing is checked while HA is off but what is
// written: a zero lease_ttl is refused like any other value out of range.
func (h HAConfig) validate(key string, n NATSConfig) configErrors {
	var errs configErrors
	if d := h.LeaseTTL.D(); d < minLeaseTTL || d > maxLeaseTTL {
		errs.add(key+".lease_ttl", "%v must be within [%v, %v]", d, minLeaseTTL, maxLeaseTTL)
	}
	if h.ReplicaID != "" {
		if err := watcher.ValidateToken(h.ReplicaID); err != nil {
			errs.add(key+".replica_id", "%s: %v", watcher.Quote(h.ReplicaID), err)
		}
	}
	if !h.Enabled {
		return errs
	}
	if strings.TrimSpace(n.URL) == "" {
		errs.add(key+".enabled", "needs an external nats.url: the embedded server lives and dies with this machine")
	}
	if n.Mode == "core" {
		errs.add(key+".enabled", "needs nats.mode jetstream: leases, state and fencing are JetStream's")
	}
	return errs
}

// replica returns the replica id: ReplicaID, or the host name made a
// subject token.
func (h HAConfig) replica() (string, error) {
	if h.ReplicaID != "" {
		return h.ReplicaID, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return tokenOf(host), nil
}

// tokenOf replaces every character of s that a subject token may not hold
// with '-'.
func tokenOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, s)
}
