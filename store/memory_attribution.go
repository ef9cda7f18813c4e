package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// append appends copies of events to t's outbox under its next sequences
// and returns the first and last, or 0, 0 for none; m.mu is held.
func (t *memTarget) append(events []watcher.Event) (first, last uint64) {
	n := uint64(len(events))
	if n == 0 {
		return 0, 0
	}
	first, last = t.next, t.next+n-1
	for i, e := range events {
		t.outbox = append(t.outbox, watcher.OutboxEntry{Seq: t.next + uint64(i), Event: cloneEvent(e)})
	}
	t.next += n
	return first, last
}

// PendingAttributions returns copies of target's pending attributions in
// event ID order.
func (m *Memory) PendingAttributions(ctx context.Context, target watcher.Target) ([]watcher.PendingAttribution, error) {
	if err := m.lock(ctx, &target); err != nil {
		return nil, fmt.Errorf("pending attributions %s: %w", target, err)
	}
	defer m.mu.Unlock()
	t := m.targets[target]
	if t == nil {
		return nil, nil
	}
	out := slices.SortedFunc(maps.Values(t.pending), func(a, b watcher.PendingAttribution) int {
		return cmp.Compare(a.EventID, b.EventID)
	})
	for i := range out {
		out[i] = clonePending(out[i])
	}
	return out, nil
}

// ResolveAttributions appends the follow-ups still pending and removes
// their attributions and done's, at once; it refuses what Bolt refuses.
func (m *Memory) ResolveAttributions(ctx context.Context, target watcher.Target, events []watcher.Event, done []string) (int, error) {
	if err := m.lock(ctx, &target); err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", target, err)
	}
	defer m.mu.Unlock()
	if err := validateFollowUps(events); err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", target, err)
	}
	t := m.targets[target]
	if t == nil {
		return 0, nil
	}
	var add []watcher.Event
	for _, e := range events {
		if _, ok := t.pending[e.Completes]; ok {
			add = append(add, e)
			delete(t.pending, e.Completes)
		}
	}
	for _, id := range done {
		delete(t.pending, id)
	}
	t.append(add)
	return len(add), nil
}

func clonePending(p watcher.PendingAttribution) watcher.PendingAttribution {
	p.ObservedAt, p.Deadline = p.ObservedAt.UTC(), p.Deadline.UTC()
	return p
}
