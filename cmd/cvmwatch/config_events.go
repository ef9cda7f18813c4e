package main

import "github.com/cvmwatch/cvmwatch/watcher"

// EventsConfig tunes how observations become events.
type EventsConfig struct {
	AnnounceBaseline bool    `yaml:"announce_baseline"`
	ConfirmScans     int     `yaml:"confirm_scans"`
	MassFraction     float64 `yaml:"mass_fraction"`
	MassMinInstances int     `yaml:"mass_min_instances"`
	MassConfirmScans int     `yaml:"mass_confirm_scans"`
	// TombstoneRetention is how long a released instance's record is kept
	// (0: forever).
	TombstoneRetention Duration `yaml:"tombstone_retention"`
}

// defaultEvents is the events section of a file that leaves it out: the
// watcher's default policy.
func defaultEvents() EventsConfig {
	p := watcher.DefaultPolicy()
	return EventsConfig{
		AnnounceBaseline:   p.AnnounceBaseline,
		ConfirmScans:       p.ConfirmScans,
		MassFraction:       p.MassFraction,
		MassMinInstances:   p.MassMinInstances,
		MassConfirmScans:   p.MassConfirmScans,
		TombstoneRetention: Duration(p.TombstoneRetention),
	}
}

// validate reports the section's problems under key. Zero is a value only
// for tombstone_retention (keep the records forever).
func (e EventsConfig) validate(key string) configErrors {
	var errs configErrors
	if e.ConfirmScans < 1 {
		errs.add(key+".confirm_scans", "%d must be at least 1", e.ConfirmScans)
	}
	if f := e.MassFraction; !(f > 0 && f <= 1) { // NaN included
		errs.add(key+".mass_fraction", "%v must be in (0, 1]", e.MassFraction)
	}
	if e.MassMinInstances < 1 {
		errs.add(key+".mass_min_instances", "%d must be at least 1", e.MassMinInstances)
	}
	if e.MassConfirmScans < 1 {
		errs.add(key+".mass_confirm_scans", "%d must be at least 1", e.MassConfirmScans)
	} else if e.MassConfirmScans < e.ConfirmScans {
		errs.add(key+".mass_confirm_scans", "%d must be at least %s.confirm_scans (%d)", e.MassConfirmScans, key, e.ConfirmScans)
	}
	if e.TombstoneRetention.D() < 0 {
		errs.add(key+".tombstone_retention", "must not be negative")
	}
	return errs
}
