package watcher

// The body of a follow-up (TypeAttributed): who made the operation of an
// event that went out without its actor.

// AttributedData is the data of a TypeAttributed event as subscribers
// decode it: the event it completes (completes, an event id), when the
// actor was found (observedAt), and that event's data.operation with
// data.operation.actor.
type AttributedData struct {
	Account    string         `json:"account"`
	Region     string         `json:"region"`
	InstanceID string         `json:"instanceId"`
	Completes  string         `json:"completes"`
	ObservedAt string         `json:"observedAt"`
	Operation  *OperationData `json:"operation"`
}

// attributedEnvelope is a TypeAttributed event as encoding/json encodes
// it, fields in contract order (what marshalAttributed must match).
type attributedEnvelope struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject"`
	Time            string         `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	Data            AttributedData `json:"data"`
}

// marshalAttributed encodes a follow-up; e.Operation and e.Actor are
// expected (a follow-up without them says nothing, but is still encoded:
// operation null).
func marshalAttributed(e Event) ([]byte, error) {
	b := appendEnvelope(make([]byte, 0, 512), e, TypeAttributed)
	b = append(b, `,"completes":`...)
	b = appendJSONString(b, e.Completes)
	b = append(b, `,"observedAt":"`...)
	b = appendTime(b, e.ObservedAt)
	b = append(b, `","operation":`...)
	if e.Operation == nil {
		b = append(b, "null"...)
	} else {
		b = appendOperationActor(b, e.Operation, e.Actor)
	}
	return append(b, "}}"...), nil
}
