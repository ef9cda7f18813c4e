package jsstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// Load reads target's journal from the cluster (never from a cache, so a
// replica taking the target over sees every write of the previous owner),
// calls fn for every record in instance ID order and returns the target's
// metadata. It clears the ErrReload condition of the target.
func (s *Store) Load(ctx context.Context, tgt watcher.Target, fn func(watcher.Record) error) (watcher.ScanMeta, error) {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", tgt, err)
	}
	if err := s.read(ctx, t); err != nil {
		t.mu.Unlock()
		return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", tgt, err)
	}
	t.needLoad = false
	records, err := t.v.sortedRecords()
	meta := t.v.meta
	t.mu.Unlock()
	if err != nil {
		return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", tgt, err)
	}
	for _, r := range records {
		if err := fn(r); err != nil {
			return watcher.ScanMeta{}, err
		}
	}
	return meta, nil
}

// Commit appends c to target's journal as one atomic write (see the
// package documentation for ErrFenced and ErrReload) and returns the
// outbox sequences given to c.Events.
func (s *Store) Commit(ctx context.Context, tgt watcher.Target, c watcher.Commit) (first, last uint64, err error) {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	if t.needLoad {
		return 0, 0, fmt.Errorf("commit %s: %w", tgt, ErrReload)
	}
	v, err := s.view(ctx, t)
	if err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", tgt, err)
	}
	body, err := encodeCommit(c, v.next)
	if err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", tgt, err)
	}
	next := v.next
	if err := s.write(ctx, t, body); err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", tgt, err)
	}
	if err := v.apply(body); err != nil {
		t.v = nil // cannot happen: body was just encoded
		return 0, 0, fmt.Errorf("commit %s: %w", tgt, err)
	}
	s.compact(ctx, t)
	if n := uint64(len(c.Events)); n > 0 {
		return next, next + n - 1, nil
	}
	return 0, 0, nil
}

// Outbox returns up to max entries of target's outbox with Seq > after, in
// Seq order, decoded afresh.
func (s *Store) Outbox(ctx context.Context, tgt watcher.Target, after uint64, max int) ([]watcher.OutboxEntry, error) {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	v, err := s.view(ctx, t)
	if err != nil || max <= 0 {
		return nil, err
	}
	i := sort.Search(len(v.outbox), func(i int) bool { return v.outbox[i].seq > after })
	var out []watcher.OutboxEntry
	for _, e := range v.outbox[i:min(len(v.outbox), i+max)] {
		ev, err := store.DecodeEvent(e.ev)
		if err != nil {
			return nil, fmt.Errorf("outbox %s entry %d: %w", tgt, e.seq, err)
		}
		out = append(out, watcher.OutboxEntry{Seq: e.seq, Event: ev})
	}
	return out, nil
}

// Acknowledge appends an acknowledgement of target's outbox entries with
// Seq <= upTo to its journal, unless none is left to acknowledge (then it
// writes nothing).
func (s *Store) Acknowledge(ctx context.Context, tgt watcher.Target, upTo uint64) error {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	v, err := s.view(ctx, t)
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", tgt, err)
	}
	if len(v.outbox) == 0 || v.outbox[0].seq > upTo {
		return nil
	}
	body := binary.AppendUvarint([]byte{opAck}, upTo)
	if err := s.write(ctx, t, body); err != nil {
		return fmt.Errorf("acknowledge %s: %w", tgt, err)
	}
	_ = v.apply(body)
	s.compact(ctx, t)
	return nil
}

// OutboxStats reports target's outbox depth and the ObservedAt of its
// oldest entry (zero when empty).
func (s *Store) OutboxStats(ctx context.Context, tgt watcher.Target) (depth int, oldest time.Time, err error) {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	v, err := s.view(ctx, t)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats %s: %w", tgt, err)
	}
	oldest, err = v.oldest()
	return len(v.outbox), oldest, err
}

// Enrichments returns the stored enrichments of ids, decoded afresh.
func (s *Store) Enrichments(ctx context.Context, tgt watcher.Target, ids []string) (map[string]watcher.Enrichment, error) {
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return nil, fmt.Errorf("enrichments %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	v, err := s.view(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("enrichments %s: %w", tgt, err)
	}
	out := make(map[string]watcher.Enrichment, len(ids))
	for _, id := range ids {
		if val, ok := v.enrich[id]; ok {
			e, err := store.DecodeEnrichment(id, val)
			if err != nil {
				return nil, fmt.Errorf("enrichments %s: %w", tgt, err)
			}
			out[id] = e
		}
	}
	return out, nil
}

// PutEnrichments appends es to target's journal as one atomic write.
func (s *Store) PutEnrichments(ctx context.Context, tgt watcher.Target, es []watcher.Enrichment) error {
	if err := store.ValidateEnrichments(es); err != nil {
		return fmt.Errorf("put enrichments %s: %w", tgt, err)
	}
	t, err := s.acquire(ctx, tgt)
	if err != nil {
		return fmt.Errorf("put enrichments %s: %w", tgt, err)
	}
	defer t.mu.Unlock()
	if len(es) == 0 {
		return nil
	}
	v, err := s.view(ctx, t)
	if err != nil {
		return fmt.Errorf("put enrichments %s: %w", tgt, err)
	}
	body, err := appendEnrich(nil, es)
	if err != nil {
		return fmt.Errorf("put enrichments %s: %w", tgt, err)
	}
	if err := s.write(ctx, t, body); err != nil {
		return fmt.Errorf("put enrichments %s: %w", tgt, err)
	}
	_ = v.apply(body)
	s.compact(ctx, t)
	return nil
}
