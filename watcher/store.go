package watcher

import (
	"context"
	"errors"
	"time"
)

// ErrStoreClosed is returned by a Store used after Close.
var ErrStoreClosed = errors.New("store closed")

// Commit is everything one scan changes for a target, applied atomically:
// after a crash either all of it is visible or none of it.
type Commit struct {
	// Put holds records that changed (new, updated, or turned into
	// tombstones). Unchanged records are not included.
	Put []Record
	// Delete holds instance IDs whose records (tombstones past retention)
	// are removed.
	Delete []string
	// Events are appended to the target's outbox in this order.
	Events []Event
	// Enrich holds enrichments that replace the instances' previous ones
	// (see Enricher). Deleting a record deletes its enrichment too.
	Enrich []Enrichment
	// Pending holds attributions to look up after the commit, one per
	// event of Events that went out without its actor (see
	// PendingAttribution).
	Pending []PendingAttribution
	// Meta replaces the target's scan metadata.
	Meta ScanMeta
}

// Store persists, per target, the snapshot of instance records and an outbox
// of events not yet published. Implementations are safe for concurrent use
// by different targets, and for one target by its loop (which writes) and its
// relay (which reads the outbox, and deletes its head while reading on:
// Outbox may overlap Acknowledge).
// Store does not keep the slices it is given or hand out slices it reuses.
type Store interface {
	// Load calls fn for every record of target (tombstones included), in
	// instance ID order, and returns the target's metadata (zero for a target
	// never committed). An error from fn stops the walk and is returned. fn
	// must not call the store (it may run inside a read transaction).
	Load(ctx context.Context, target Target, fn func(Record) error) (ScanMeta, error)

	// Commit applies c to target in one atomic, durable step: records put and
	// deleted, events appended to the outbox with the next sequences, meta
	// replaced. It returns the outbox sequences given to c.Events.
	Commit(ctx context.Context, target Target, c Commit) (first, last uint64, err error)

	// Outbox returns up to max entries of target's outbox with Seq > after,
	// in Seq order.
	Outbox(ctx context.Context, target Target, after uint64, max int) ([]OutboxEntry, error)

	// Acknowledge deletes target's outbox entries with Seq <= upTo. It is
	// called only once all of them are published; calling it again with the
	// same or a lower upTo is a no-op.
	Acknowledge(ctx context.Context, target Target, upTo uint64) error

	// OutboxStats reports target's outbox depth and the ObservedAt of its
	// oldest entry (zero when empty).
	OutboxStats(ctx context.Context, target Target) (depth int, oldest time.Time, err error)

	// Enrichments returns the stored enrichment of each of ids that has
	// one, keyed by instance ID. IDs without one are left out.
	Enrichments(ctx context.Context, target Target, ids []string) (map[string]Enrichment, error)

	// PutEnrichments replaces the stored enrichments of the instances of es
	// in one atomic, durable step apart from any commit (the background
	// refresh). It may store enrichments of instances that have no record.
	PutEnrichments(ctx context.Context, target Target, es []Enrichment) error

	// PendingAttributions returns target's pending attributions, in event
	// ID order.
	PendingAttributions(ctx context.Context, target Target) ([]PendingAttribution, error)

	// ResolveAttributions, in one atomic, durable step, appends to target's
	// outbox each follow-up of events whose Completes is still pending,
	// and removes the pending attributions of those and of done (an
	// attribution that expired). A follow-up whose attribution is no
	// longer pending is not appended: so a follow-up is appended once at
	// most, whoever resolves it and however often. It returns how many
	// were appended.
	ResolveAttributions(ctx context.Context, target Target, events []Event, done []string) (appended int, err error)

	// Targets lists the targets that have any record, metadata, outbox
	// entry or enrichment, sorted by account then region.
	Targets(ctx context.Context) ([]Target, error)

	// Close releases the store. Further calls return ErrStoreClosed.
	Close() error
}
