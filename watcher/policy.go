package watcher

import "time"

// Policy says how observations become events. The zero value is not
// usable; start from DefaultPolicy.
type Policy struct {
	// AnnounceBaseline publishes an appearance (ABSENT -> state) for every
	// instance of the first scan instead of a silent baseline.
	AnnounceBaseline bool
	// ConfirmScans is how many consecutive complete scans must miss an
	// instance before it is looked up by ID and, if the lookup does not find
	// it either, declared gone.
	ConfirmScans int
	// MassFraction: when more than this fraction of a target's live
	// instances is missing from one complete scan, the disappearances are
	// held and reported until they have persisted for MassConfirmScans.
	MassFraction float64
	// MassMinInstances: targets with fewer live instances are never judged
	// a mass disappearance (losing 3 of 4 instances is ordinary).
	MassMinInstances int
	// MassConfirmScans is the consecutive complete scans a held instance must
	// be missing before it is looked up and may be declared gone.
	MassConfirmScans int
	// TombstoneRetention is how long the record of a released instance is
	// kept, so its sequence continues if the ID ever comes back.
	TombstoneRetention time.Duration
}

// DefaultPolicy is the policy the README documents.
func DefaultPolicy() Policy {
	return Policy{
		ConfirmScans:       2,
		MassFraction:       0.5,
		MassMinInstances:   10,
		MassConfirmScans:   10,
		TombstoneRetention: 7 * 24 * time.Hour,
	}
}
