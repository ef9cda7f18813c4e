package notifier

import (
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Event is one state event as the notifier reads it: the transition, and
// the enrichment the watcher may add (see DESIGN "Enrichment"), both as
// watcher.UnmarshalCloudEvent decodes them, so the wire contract has one
// definition. Instance, Operation and Actor are nil when the event has
// none; everything that shows an event then falls back to its instance ID.
type Event struct {
	watcher.Event
	// Raw is the CloudEvent body as read; nil for an Event built in Go.
	Raw []byte
}

// DecodeEvent decodes a state event of the stream, its enrichment
// included. A body without enrichment decodes with nil Instance, Operation
// and Actor. An event whose id is not a token of [A-Za-z0-9_-] (the
// watcher's ids are hex) is an error: it could be neither looked up nor
// recorded in the dedupe memory. So is a follow-up
// (watcher.TypeAttributed): it has no transition to route or show, and the
// notifier does not read them (see the README's notifier section).
func DecodeEvent(b []byte) (Event, error) {
	we, err := watcher.UnmarshalCloudEvent(b)
	if err != nil {
		return Event{}, err
	}
	if err := watcher.ValidateToken(we.ID); err != nil {
		return Event{}, fmt.Errorf("cloudevent: id %s: %w", watcher.Quote(we.ID), err)
	}
	if we.Completes != "" {
		return Event{}, fmt.Errorf("cloudevent: %s is a follow-up (%s), not a state event", we.ID, watcher.TypeAttributed)
	}
	return Event{Event: we, Raw: b}, nil
}

// Name is the instance's name, or "" when the event does not say.
func (e Event) Name() string {
	if e.Instance == nil {
		return ""
	}
	return e.Instance.Name
}

// Tag returns the instance tag key and whether the event has it.
func (e Event) Tag(key string) (string, bool) {
	if e.Instance == nil {
		return "", false
	}
	for _, t := range e.Instance.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// Label is how a person reads the instance: "web-01 (ins-r8hr2upy)", or
// the ID alone without a name.
func (e Event) Label() string {
	if n := e.Name(); n != "" {
		return fmt.Sprintf("%s (%s)", n, e.InstanceID)
	}
	return e.InstanceID
}

// Kind is the short name of the event's type: appeared, state_changed or
// disappeared.
func (e Event) Kind() string {
	switch e.Type() {
	case watcher.TypeAppeared:
		return KindAppeared
	case watcher.TypeDisappeared:
		return KindDisappeared
	default:
		return KindStateChanged
	}
}

// The short names of the event types, as routes match them.
const (
	KindAppeared     = "appeared"
	KindStateChanged = "state_changed"
	KindDisappeared  = "disappeared"
)

// CloudEvent is the event's CloudEvent body: as read, or encoded from the
// transition (without enrichment) for an Event built in Go.
func (e Event) CloudEvent() ([]byte, error) {
	if e.Raw != nil {
		return e.Raw, nil
	}
	return watcher.MarshalCloudEvent(e.Event)
}
