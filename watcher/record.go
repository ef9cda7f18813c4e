package watcher

import "time"

// Record is what the store keeps for one instance of a target: its last
// known state and how many events it has had. A Record with State Absent is a
// tombstone: the instance was confirmed gone, and the tombstone keeps its
// sequence so that a reappearing ID continues it instead of restarting at 1.
type Record struct {
	InstanceID string
	State      State
	// Sequence is the sequence of the instance's last event; 0 means it has
	// had none yet (it was part of the silent baseline).
	Sequence uint64
	// Since is when the instance was first observed in State.
	Since time.Time
	// LastSeen is the start of the latest scan known to have listed the
	// instance in State (for a tombstone: when it was confirmed gone). It is
	// written only together with another change, so after a restart the
	// loop also trusts ScanMeta.LastComplete for records with Missing == 0.
	LastSeen time.Time
	// Missing counts the consecutive complete scans that did not list the
	// instance; 0 once it is listed again.
	Missing int
	// Unread is set when a scan listed the instance without a usable state
	// (a conflicting duplicate, a null state) since it was last seen in
	// State: LastSeen is then exact and never derived from LastComplete,
	// so an event's window cannot claim a sighting that did not happen.
	// Cleared when the instance is listed in a state again.
	Unread bool
}

// ScanMeta is the per-target metadata written with every commit.
type ScanMeta struct {
	// Baselined is true once a complete scan has been committed: from then
	// on, an unknown ID is an appearance, not part of the baseline.
	Baselined bool
	// LastScan is the start of the latest committed scan, complete or not.
	LastScan time.Time
	// LastComplete is the start of the latest committed complete scan.
	LastComplete time.Time
	// Scans and CompleteScans count committed scans.
	Scans         uint64
	CompleteScans uint64
}
