package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Memory is an in-memory watcher.Store with the semantics of Bolt, minus
// durability: it refuses the same commits, numbers the outbox the same way
// and returns times in UTC. It copies everything it is given and everything
// it returns. It is what loop tests use; FailNextCommit lets them make a
// commit fail. Safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	failNext error
	targets  map[watcher.Target]*memTarget
}

type memTarget struct {
	records map[string]watcher.Record
	outbox  []watcher.OutboxEntry // ascending, contiguous Seq
	next    uint64                // next Seq to give out
	meta    watcher.ScanMeta
	enrich  map[string]watcher.Enrichment
	pending map[string]watcher.PendingAttribution // by event id
}

// target returns target's state, creating it; m.mu is held.
func (m *Memory) target(target watcher.Target) *memTarget {
	t := m.targets[target]
	if t == nil {
		t = &memTarget{records: make(map[string]watcher.Record), next: 1, enrich: map[string]watcher.Enrichment{},
			pending: map[string]watcher.PendingAttribution{}}
		m.targets[target] = t
	}
	return t
}

var _ watcher.Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{targets: make(map[watcher.Target]*memTarget)}
}

// FailNextCommit makes the next call to Commit return err and change
// nothing; nil disarms it. It lets tests prove that a failed commit
// publishes nothing and leaves the loop's snapshot where it was.
func (m *Memory) FailNextCommit(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext = err
}

// lock takes the lock, or fails once the store is closed.
func (m *Memory) lock(ctx context.Context, target *watcher.Target) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return watcher.ErrStoreClosed
	}
	if target != nil {
		if err := validateTarget(*target); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		m.mu.Unlock()
		return err
	}
	return nil
}

// Load calls fn for a copy of every record of target, in instance ID order,
// and returns the target's scan metadata (zero for a target never
// committed). fn runs without the store's lock held.
func (m *Memory) Load(ctx context.Context, target watcher.Target, fn func(watcher.Record) error) (watcher.ScanMeta, error) {
	if err := m.lock(ctx, &target); err != nil {
		return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", target, err)
	}
	t := m.targets[target]
	if t == nil {
		m.mu.Unlock()
		return watcher.ScanMeta{}, nil
	}
	records := slices.SortedFunc(maps.Values(t.records), func(a, b watcher.Record) int {
		return cmp.Compare(a.InstanceID, b.InstanceID)
	})
	meta := t.meta
	m.mu.Unlock()
	for i, r := range records {
		if i%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", target, err)
			}
		}
		if err := fn(r); err != nil {
			return watcher.ScanMeta{}, err
		}
	}
	return meta, nil
}

// Commit applies c to target at once: records put and deleted, events
// appended to the outbox under the target's next sequences, scan metadata
// replaced. It returns the sequences given to c.Events, or 0, 0 when c has
// none, and refuses the commits Bolt refuses.
func (m *Memory) Commit(ctx context.Context, target watcher.Target, c watcher.Commit) (first, last uint64, err error) {
	if err := m.lock(ctx, &target); err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", target, err)
	}
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		return 0, 0, err
	}
	if err := validateCommit(c); err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", target, err)
	}
	t := m.target(target)
	for _, r := range c.Put {
		r.Since, r.LastSeen = r.Since.UTC(), r.LastSeen.UTC()
		t.records[r.InstanceID] = r
	}
	for _, id := range c.Delete {
		delete(t.records, id)
		delete(t.enrich, id)
	}
	for _, e := range c.Enrich {
		t.enrich[e.InstanceID] = cloneEnrichment(e)
	}
	for _, p := range c.Pending {
		t.pending[p.EventID] = clonePending(p)
	}
	first, last = t.append(c.Events)
	t.meta = c.Meta
	t.meta.LastScan, t.meta.LastComplete = t.meta.LastScan.UTC(), t.meta.LastComplete.UTC()
	return first, last, nil
}

// Outbox returns copies of up to max entries of target's outbox with
// Seq > after, in Seq order; none when max <= 0.
func (m *Memory) Outbox(ctx context.Context, target watcher.Target, after uint64, max int) ([]watcher.OutboxEntry, error) {
	if err := m.lock(ctx, &target); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", target, err)
	}
	defer m.mu.Unlock()
	t := m.targets[target]
	if t == nil || max <= 0 {
		return nil, nil
	}
	i := sort.Search(len(t.outbox), func(i int) bool { return t.outbox[i].Seq > after })
	out := slices.Clone(t.outbox[i:min(len(t.outbox), i+max)])
	for i := range out {
		out[i].Event = cloneEvent(out[i].Event)
	}
	return out, nil
}

// Enrichments returns copies of the stored enrichments of ids.
func (m *Memory) Enrichments(ctx context.Context, target watcher.Target, ids []string) (map[string]watcher.Enrichment, error) {
	if err := m.lock(ctx, &target); err != nil {
		return nil, fmt.Errorf("enrichments %s: %w", target, err)
	}
	defer m.mu.Unlock()
	out := make(map[string]watcher.Enrichment, len(ids))
	if t := m.targets[target]; t != nil {
		for _, id := range ids {
			if e, ok := t.enrich[id]; ok {
				out[id] = cloneEnrichment(e)
			}
		}
	}
	return out, nil
}

// PutEnrichments stores copies of es, refusing what Bolt refuses.
func (m *Memory) PutEnrichments(ctx context.Context, target watcher.Target, es []watcher.Enrichment) error {
	if err := m.lock(ctx, &target); err != nil {
		return fmt.Errorf("put enrichments %s: %w", target, err)
	}
	defer m.mu.Unlock()
	if err := validateEnrich(es); err != nil {
		return fmt.Errorf("put enrichments %s: %w", target, err)
	}
	if len(es) == 0 {
		return nil
	}
	t := m.target(target)
	for _, e := range es {
		t.enrich[e.InstanceID] = cloneEnrichment(e)
	}
	return nil
}

// cloneEnrichment copies e's slices and puts its time in UTC.
func cloneEnrichment(e watcher.Enrichment) watcher.Enrichment {
	e.FetchedAt = e.FetchedAt.UTC()
	e.Instance = cloneInstance(e.Instance)
	return e
}

func cloneInstance(in watcher.Instance) watcher.Instance {
	in.PrivateIPs, in.PublicIPs, in.Tags = slices.Clone(in.PrivateIPs), slices.Clone(in.PublicIPs), slices.Clone(in.Tags)
	return in
}

// cloneEvent copies e's enrichment and puts its times in UTC.
func cloneEvent(e watcher.Event) watcher.Event {
	e.ObservedAt, e.PreviousObservedAt = e.ObservedAt.UTC(), e.PreviousObservedAt.UTC()
	if e.Instance != nil {
		in := cloneInstance(*e.Instance)
		e.Instance = &in
	}
	if e.Operation != nil {
		op := *e.Operation
		e.Operation = &op
	}
	if e.Actor != nil {
		a := *e.Actor
		e.Actor = &a
	}
	return e
}

// Acknowledge deletes target's outbox entries with Seq <= upTo. Sequences
// are never reused after the outbox empties.
func (m *Memory) Acknowledge(ctx context.Context, target watcher.Target, upTo uint64) error {
	if err := m.lock(ctx, &target); err != nil {
		return fmt.Errorf("acknowledge %s: %w", target, err)
	}
	defer m.mu.Unlock()
	t := m.targets[target]
	if t == nil {
		return nil
	}
	i := sort.Search(len(t.outbox), func(i int) bool { return t.outbox[i].Seq > upTo })
	t.outbox = slices.Delete(t.outbox, 0, i)
	return nil
}

// OutboxStats reports target's outbox depth and the ObservedAt of its oldest
// entry (zero when empty).
func (m *Memory) OutboxStats(ctx context.Context, target watcher.Target) (depth int, oldest time.Time, err error) {
	if err := m.lock(ctx, &target); err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats %s: %w", target, err)
	}
	defer m.mu.Unlock()
	t := m.targets[target]
	if t == nil || len(t.outbox) == 0 {
		return 0, time.Time{}, nil
	}
	return len(t.outbox), t.outbox[0].Event.ObservedAt, nil
}

// Targets lists every committed target, sorted by account then region.
func (m *Memory) Targets(ctx context.Context) ([]watcher.Target, error) {
	if err := m.lock(ctx, nil); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Keys(m.targets), func(a, b watcher.Target) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	}), nil
}

// Close discards the store's contents. Calling it again returns nil; any
// other call after it returns watcher.ErrStoreClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.targets = nil
	return nil
}
