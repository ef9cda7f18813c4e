package watcher

// The body of an operation event (TypeOperation): an operation that left
// no visible state change.

// OperationEventData is the data of a TypeOperation event as subscribers
// decode it: the instance's unchanged state, the operation (data.operation,
// the shape transitions carry, with its actor when found before the
// commit), and the window in which it happened: after previousObservedAt
// (an answer then showed an older request id) and before observedAt (the
// answer showing this one had arrived). It has no sequence: it is not a
// step of the instance's chain of states, so it neither takes nor leaves a
// gap in the sequences of the state events.
type OperationEventData struct {
	Account            string         `json:"account"`
	Region             string         `json:"region"`
	InstanceID         string         `json:"instanceId"`
	State              State          `json:"state"`
	ObservedAt         string         `json:"observedAt"`
	PreviousObservedAt string         `json:"previousObservedAt,omitempty"`
	Instance           *InstanceData  `json:"instance,omitempty"`
	Operation          *OperationData `json:"operation"`
}

// operationEnvelope is a TypeOperation event as encoding/json encodes it,
// fields in contract order (what marshalOperation must match).
type operationEnvelope struct {
	SpecVersion     string             `json:"specversion"`
	ID              string             `json:"id"`
	Source          string             `json:"source"`
	Type            string             `json:"type"`
	Subject         string             `json:"subject"`
	Time            string             `json:"time"`
	DataContentType string             `json:"datacontenttype"`
	Data            OperationEventData `json:"data"`
}

// marshalOperation encodes an operation event; e.Operation is expected
// (one without it says nothing, but is still encoded: operation null).
func marshalOperation(e Event) ([]byte, error) {
	b := appendEnvelope(make([]byte, 0, 512), e, TypeOperation)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(e.To))
	b = appendWindowAndInstance(b, e)
	b = append(b, `,"operation":`...)
	if e.Operation == nil {
		b = append(b, "null"...)
	} else {
		b = appendOperationActor(b, e.Operation, e.Actor)
	}
	return append(b, "}}"...), nil
}
