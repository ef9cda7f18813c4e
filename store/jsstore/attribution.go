package jsstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// PendingAttributions returns target's pending attributions in event ID
// order, decoded afresh.
func (s *Store) PendingAttributions(ctx context.Context, tgt watcher.Target) ([]watcher.PendingAttribution, error) {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return nil, fmt.Errorf("pending attributions %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	v, err := s.view(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("pending attributions %s: %w", tgt, err)
	}
	var out []watcher.PendingAttribution
	for id, val := range v.pending {
		p, err := store.DecodePending(id, val)
		if err != nil {
			return nil, fmt.Errorf("pending attributions %s: %w", tgt, err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b watcher.PendingAttribution) int { return cmp.Compare(a.EventID, b.EventID) })
	return out, nil
}

// ResolveAttributions appends to target's journal, as one atomic write, the
// follow-ups whose attribution is still pending (as outbox entries) with
// the removal of those attributions and of done's. It writes nothing when
// nothing is pending, and refuses what the other stores refuse.
func (s *Store) ResolveAttributions(ctx context.Context, tgt watcher.Target, events []watcher.Event, done []string) (int, error) {
	if err := store.ValidateFollowUps(events); err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", tgt, err)
	}
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	if t.needLoad {
		return 0, fmt.Errorf("resolve attributions %s: %w", tgt, ErrReload)
	}
	v, err := s.view(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", tgt, err)
	}
	var b []byte
	seq, resolved := v.next, map[string]bool{}
	for i, e := range events {
		if _, ok := v.pending[e.Completes]; !ok || resolved[e.Completes] {
			continue // resolved already: never append it twice
		}
		val, err := store.AppendEvent(nil, e)
		if err != nil {
			return 0, fmt.Errorf("resolve attributions %s: follow-up %d: %w", tgt, i, err)
		}
		b = appendStr(binary.AppendUvarint(append(b, opEvent), seq), string(val))
		b = appendStr(append(b, opResolved), e.Completes)
		resolved[e.Completes] = true
		seq++
	}
	for _, id := range done {
		if _, ok := v.pending[id]; ok && !resolved[id] {
			b = appendStr(append(b, opResolved), id)
			resolved[id] = true
		}
	}
	if len(b) == 0 {
		return 0, nil
	}
	appended := int(seq - v.next)
	b = binary.AppendUvarint(append(b, opNext), seq)
	if err := s.write(ctx, t, b); err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", tgt, err)
	}
	if err := v.apply(b); err != nil {
		t.v = nil // cannot happen: b was just encoded
		return 0, fmt.Errorf("resolve attributions %s: %w", tgt, err)
	}
	s.compact(ctx, t)
	return appended, nil
}
