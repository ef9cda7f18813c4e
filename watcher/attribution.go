package watcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Actor is who made an operation's request, as CloudAudit recorded it:
// published as data.operation.actor. Every string is data from the API: it
// is JSON-escaped where it is published and never becomes a subject token.
type Actor struct {
	// Username is CloudAudit's Username, the principal: "root" for the
	// root account, a sub-account's ID or name, "roleUser" for a role.
	Username  string
	SourceIP  string
	EventName string
}

// MaxActorBytes bounds the JSON of data.operation.actor. Bound keeps the
// rest of the enrichment within MaxEnrichmentBytes-MaxActorBytes, so an
// event with an actor stays within MaxEnrichmentBytes too.
const MaxActorBytes = 512

// Bound cuts a to the documented limits: each value to 128 bytes (at a
// UTF-8 boundary), then, while its JSON is over MaxActorBytes (values full
// of characters JSON escapes), the longest value halved.
func (a Actor) Bound() Actor {
	fields := []*string{&a.Username, &a.SourceIP, &a.EventName}
	for _, s := range fields {
		*s = cutUTF8(*s, maxWord)
	}
	for len(appendActor(nil, &a)) > MaxActorBytes {
		longest := fields[0]
		for _, s := range fields {
			if len(*s) > len(*longest) {
				longest = s
			}
		}
		*longest = cutUTF8(*longest, len(*longest)/2)
	}
	return a
}

// Attributor finds who made a request, in CloudAudit. Implementations are
// safe for concurrent use, own their retry policy and rate limiting (their
// own quota), and never panic on a malformed answer.
type Attributor interface {
	// Actor looks up the audit record of requestID, the request of an
	// operation seen by a scan that ended at around (the request was made
	// before it). found is false, with a nil error, when no record is
	// visible yet: records appear some time after the request. err wraps
	// ErrAuth when the lookup is not permitted, and ctx's error when the
	// caller's deadline ran out.
	Actor(ctx context.Context, requestID string, around time.Time) (a Actor, found bool, err error)
}

// PendingAttribution is an event that went out with data.operation but
// without its actor: the audit record was not visible within
// Config.ActorWait. It is stored in the same commit as its event and
// removed in the same store transaction that appends the follow-up
// (TypeAttributed) to the outbox, or once Deadline passes without a
// record: so across any crash a follow-up is published exactly once or,
// past the deadline, never.
type PendingAttribution struct {
	// EventID is the id of the event the follow-up completes.
	EventID    string
	InstanceID string
	// Operation is the event's data.operation; RequestID is looked up.
	Operation Operation
	// ObservedAt is the event's ObservedAt; Deadline is ObservedAt plus
	// Config.ActorHorizon.
	ObservedAt time.Time
	Deadline   time.Time
}

// AttributedID returns the stable id of the follow-up that completes the
// event completedID: the same completed event always gives the same id,
// so a re-published follow-up is a duplicate the broker drops.
func AttributedID(completedID string) string {
	h := sha256.New()
	h.Write([]byte("attributed"))
	h.Write([]byte{0})
	h.Write([]byte(completedID))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Attributed returns the follow-up event that completes p with actor a,
// found at now: type TypeAttributed, subject
// "<prefix>.attribution.<account>.<region>.<instanceId>", data.completes =
// p.EventID, data.operation = p.Operation with data.operation.actor = a.
func Attributed(t Target, p PendingAttribution, a Actor, now time.Time) Event {
	op := p.Operation
	actor := a.Bound()
	return Event{
		ID: AttributedID(p.EventID), Target: t, InstanceID: p.InstanceID, ObservedAt: now,
		Operation: &op, Actor: &actor, Completes: p.EventID,
	}
}
