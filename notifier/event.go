package notifier

import (
	"encoding/json"
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Event is one state event as the notifier reads it: the transition, and
// the enrichment the watcher may add (see DESIGN "Enrichment"). Instance and
// Operation are nil when the event has none; everything that shows an event
// then falls back to its instance ID.
type Event struct {
	watcher.Event
	Instance  *Instance
	Operation *Operation
	// Raw is the CloudEvent body as read; nil for an Event built in Go.
	Raw []byte
}

// Instance is the optional data.instance of an event.
type Instance struct {
	Name         string            `json:"name"`
	Zone         string            `json:"zone"`
	InstanceType string            `json:"instanceType"`
	PrivateIPs   []string          `json:"privateIps"`
	PublicIPs    []string          `json:"publicIps"`
	Tags         map[string]string `json:"tags"`
	ChargeType   string            `json:"chargeType"`
}

// Operation is the optional data.operation of an event: the API call that
// caused the change, and who made it when known.
type Operation struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	RequestID string `json:"requestId"`
	Error     string `json:"error"`
	Actor     *Actor `json:"actor"`
}

// Actor is who made an operation, from CloudAudit.
type Actor struct {
	Username  string `json:"username"`
	SourceIP  string `json:"sourceIp"`
	EventName string `json:"eventName"`
}

// enrichment is the part of an event body the watcher package does not
// decode.
type enrichment struct {
	Data struct {
		Instance  *Instance  `json:"instance"`
		Operation *Operation `json:"operation"`
	} `json:"data"`
}

// DecodeEvent decodes a CloudEvent body of the stream. A body without
// enrichment decodes with nil Instance and Operation; malformed enrichment
// is ignored (the transition itself is what must not be lost). An event
// whose id is not a token of [A-Za-z0-9_-] (the watcher's ids are hex) is
// an error: it could be neither looked up nor recorded in the dedupe memory.
func DecodeEvent(b []byte) (Event, error) {
	we, err := watcher.UnmarshalCloudEvent(b)
	if err != nil {
		return Event{}, err
	}
	if err := watcher.ValidateToken(we.ID); err != nil {
		return Event{}, fmt.Errorf("cloudevent: id %s: %w", watcher.Quote(we.ID), err)
	}
	e := Event{Event: we, Raw: b}
	var en enrichment
	if json.Unmarshal(b, &en) == nil {
		e.Instance, e.Operation = en.Data.Instance, en.Data.Operation
	}
	return e, nil
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
	v, ok := e.Instance.Tags[key]
	return v, ok
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
