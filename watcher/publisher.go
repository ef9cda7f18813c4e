package watcher

import (
	"context"
	"time"
)

// Publisher delivers events to subscribers. Implementations are safe for
// concurrent use and do not keep the slices they are given.
type Publisher interface {
	// Publish sends events in order and returns how many of them, counted
	// from the first, are known to be stored by the broker (acked). Events
	// after that prefix may or may not have been stored: the caller re-sends
	// them, with the same IDs, so the broker can drop exact duplicates. Two
	// events of one instance are never in flight at once, so a retry cannot
	// reorder an instance's events. err says why fewer than all were acked.
	Publish(ctx context.Context, events []Event) (acked int, err error)

	// PublishScan sends the summary of a completed scan (a heartbeat). It is
	// best effort: it does not go through the outbox.
	PublishScan(ctx context.Context, s ScanSummary) error
}

// ScanSummary is the heartbeat published after every committed scan.
type ScanSummary struct {
	Target   Target
	Started  time.Time
	Duration time.Duration
	Complete bool
	// Instances counts the instances known after the scan (tombstones
	// excluded); ByState counts them per state.
	Instances int
	ByState   map[State]int
	// Events counts the events this scan committed.
	Events int
	// HeldDisappearances counts instances missing from the listing whose
	// disappearance is held back as part of a mass disappearance.
	HeldDisappearances int
	Stats              ScanStats
}
