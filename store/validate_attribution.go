package store

import (
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// validatePending refuses pending attributions no store can keep: an
// empty or oversized event or instance ID, or a time outside the storable
// range.
func validatePending(ps []watcher.PendingAttribution) error {
	for i, p := range ps {
		if err := validateInstanceID(p.EventID); err != nil {
			return fmt.Errorf("pending attribution %d: event %w", i, err)
		}
		if err := validateInstanceID(p.InstanceID); err != nil {
			return fmt.Errorf("pending attribution %d: %w", i, err)
		}
		if err := checkTime(p.ObservedAt); err != nil {
			return fmt.Errorf("pending attribution %d observed at: %w", i, err)
		}
		if err := checkTime(p.Deadline); err != nil {
			return fmt.Errorf("pending attribution %d deadline: %w", i, err)
		}
	}
	return nil
}

// validateFollowUps refuses follow-ups that complete no event or whose
// times cannot be stored.
func validateFollowUps(events []watcher.Event) error {
	for i, e := range events {
		if e.Completes == "" {
			return fmt.Errorf("follow-up %d completes no event", i)
		}
		if err := checkTime(e.ObservedAt); err != nil {
			return fmt.Errorf("follow-up %d observed at: %w", i, err)
		}
	}
	return nil
}
