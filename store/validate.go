package store

import (
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// maxInstanceIDLen bounds the instance IDs a store accepts as record keys.
// Real IDs are 12 bytes; the bound only keeps a bug from writing huge keys.
const maxInstanceIDLen = 1024

// validateTarget accepts targets whose account and region are safe subject
// tokens (watcher.ValidateToken), as the watcher.Target contract promises.
// Both stores refuse other targets the same way.
func validateTarget(t watcher.Target) error {
	if err := watcher.ValidateToken(t.Account); err != nil {
		return fmt.Errorf("target account %s: %w", watcher.Quote(t.Account), err)
	}
	if err := watcher.ValidateToken(t.Region); err != nil {
		return fmt.Errorf("target region %s: %w", watcher.Quote(t.Region), err)
	}
	return nil
}

// validateCommit refuses a commit that no store can apply faithfully: an
// empty or oversized instance ID, an ID both put and deleted (the result
// would depend on the order of application), or a time outside the storable
// range. Both stores call it before changing anything.
func validateCommit(c watcher.Commit) error {
	var deleted map[string]struct{}
	if len(c.Delete) > 0 {
		deleted = make(map[string]struct{}, len(c.Delete))
	}
	for i, id := range c.Delete {
		if err := validateInstanceID(id); err != nil {
			return fmt.Errorf("delete %d: %w", i, err)
		}
		deleted[id] = struct{}{}
	}
	for i, r := range c.Put {
		if err := validateInstanceID(r.InstanceID); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
		if _, ok := deleted[r.InstanceID]; ok {
			return fmt.Errorf("instance %s is both put and deleted", watcher.Quote(r.InstanceID))
		}
		if err := checkTime(r.Since); err != nil {
			return fmt.Errorf("put %s since: %w", watcher.Quote(r.InstanceID), err)
		}
		if err := checkTime(r.LastSeen); err != nil {
			return fmt.Errorf("put %s last seen: %w", watcher.Quote(r.InstanceID), err)
		}
	}
	for i, e := range c.Events {
		if err := checkTime(e.ObservedAt); err != nil {
			return fmt.Errorf("event %d observed at: %w", i, err)
		}
		if err := checkTime(e.PreviousObservedAt); err != nil {
			return fmt.Errorf("event %d previous observed at: %w", i, err)
		}
	}
	if err := validateEnrich(c.Enrich); err != nil {
		return err
	}
	if err := validatePending(c.Pending); err != nil {
		return err
	}
	if err := checkTime(c.Meta.LastScan); err != nil {
		return fmt.Errorf("meta last scan: %w", err)
	}
	if err := checkTime(c.Meta.LastComplete); err != nil {
		return fmt.Errorf("meta last complete: %w", err)
	}
	return nil
}

func validateInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty instance id")
	case len(id) > maxInstanceIDLen:
		return fmt.Errorf("instance id of %d bytes, more than %d", len(id), maxInstanceIDLen)
	}
	return nil
}

// validateEnrich refuses enrichments no store can key or time faithfully.
func validateEnrich(es []watcher.Enrichment) error {
	for i, e := range es {
		if err := validateInstanceID(e.InstanceID); err != nil {
			return fmt.Errorf("enrichment %d: %w", i, err)
		}
		if err := checkTime(e.FetchedAt); err != nil {
			return fmt.Errorf("enrichment %s fetched at: %w", watcher.Quote(e.InstanceID), err)
		}
	}
	return nil
}
