package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// errLeaseLapsed is wrapped by the error of a write refused because this
// replica no longer counts the target's lease valid by its own clock.
var errLeaseLapsed = errors.New("lease on the target no longer valid by this replica's clock")

// leaseGuard is the journal store of an HA replica, refusing every write
// to a target whose lease this replica does not count valid now (last
// successful renewal older than lease_ttl minus the margin): a replica
// that was paused past its lease does no commit, acknowledgement,
// enrichment or attribution write for the target, instead of sending one
// for the server to fence. Nothing is written and the error does not wrap
// watcher.ErrReload: the caller's snapshot still matches the journal as
// this replica left it. Reads pass through.
//
// It saves wasted work and log noise; it is not the guard. A write that
// passes the check can still reach the server after the lease ended (a
// pause right after the check): jsstore's expected last sequence refuses
// it once a successor has written.
type leaseGuard struct {
	watcher.Store
	valid func(watcher.Target) bool
}

func (g leaseGuard) check(op string, t watcher.Target) error {
	if g.valid(t) {
		return nil
	}
	return fmt.Errorf("%s %s: %w", op, t, errLeaseLapsed)
}

func (g leaseGuard) Commit(ctx context.Context, t watcher.Target, c watcher.Commit) (uint64, uint64, error) {
	if err := g.check("commit", t); err != nil {
		return 0, 0, err
	}
	return g.Store.Commit(ctx, t, c)
}

func (g leaseGuard) Acknowledge(ctx context.Context, t watcher.Target, upTo uint64) error {
	if err := g.check("acknowledge", t); err != nil {
		return err
	}
	return g.Store.Acknowledge(ctx, t, upTo)
}

func (g leaseGuard) PutEnrichments(ctx context.Context, t watcher.Target, es []watcher.Enrichment) error {
	if err := g.check("put enrichments", t); err != nil {
		return err
	}
	return g.Store.PutEnrichments(ctx, t, es)
}

func (g leaseGuard) ResolveAttributions(ctx context.Context, t watcher.Target, events []watcher.Event, done []string) (int, error) {
	if err := g.check("resolve attributions", t); err != nil {
		return 0, err
	}
	return g.Store.ResolveAttributions(ctx, t, events, done)
}

// leaseValid reports whether this replica holds t and counts its lease
// valid now.
func (h *haRunner) leaseValid(t watcher.Target) bool {
	_, ok := h.leases.Valid(t)
	return ok
}
