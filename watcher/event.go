package watcher

import "time"

// Event is one observed transition of one instance. Events of one instance
// have contiguous sequences (1, 2, 3, ...) and each one's From equals the
// previous one's To. Two kinds of events stand outside that chain and have
// no Sequence: a follow-up (Completes set, TypeAttributed) and an
// operation event (IsOperation: From == To, the unchanged state;
// TypeOperation), an operation that left no visible state change.
type Event struct {
	// ID is stable: the same transition always gets the same ID, across
	// retries and restarts (see EventID).
	ID         string
	Target     Target
	InstanceID string
	From       State
	To         State
	Sequence   uint64
	// ObservedAt is when the change was observed (the end of the scan that
	// saw it); the change happened within [PreviousObservedAt, ObservedAt].
	ObservedAt time.Time
	// PreviousObservedAt is the last time the instance was seen in From;
	// zero for an appearance.
	PreviousObservedAt time.Time
	// Instance is the instance's identity (data.instance), nil when it
	// could not be fetched in time or enrichment is off. For a
	// disappearance it holds the last known values.
	Instance *Instance
	// Operation is the operation behind the change (data.operation), nil
	// unless it is new since the instance's previous enrichment (see
	// Attribute).
	Operation *Operation
	// Actor is who made Operation's request (data.operation.actor), nil
	// unless it was found before the commit; only with Operation.
	Actor *Actor
	// Completes, when set, makes the event a follow-up (TypeAttributed) to
	// the event of that id, which went out without its actor: it carries
	// Operation and Actor, no From, To or Sequence (see Attributed).
	Completes string
}

// OutboxEntry is an event waiting in the outbox of its target. Seq orders
// the entries of one target in commit order, starting at 1, never reused.
type OutboxEntry struct {
	Seq   uint64
	Event Event
}
