package publisher

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// DefaultPrefix is the subject prefix used when a configuration leaves it
// empty: events go to "cvm.state.>", scan summaries to "cvm.scan.>".
const DefaultPrefix = "cvm"

// Header names set on every published message.
const (
	// HeaderContentType carries watcher.ContentType for events and
	// ScanContentType for scan summaries.
	HeaderContentType = "Content-Type"
	// HeaderMsgID carries the event ID (or the scan's ScanMsgID); JetStream
	// drops a message whose ID it has seen within the stream's Duplicates
	// window.
	HeaderMsgID = jetstream.MsgIDHeader
)

// Message is one NATS message as a publisher sent it or a subscriber received
// it. The in-memory publisher records these; the conformance suite compares
// them.
type Message struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// instanceKey identifies one instance across targets: two events with the
// same key must never be in flight at once.
type instanceKey struct {
	account, region, id string
}

func keyOf(e watcher.Event) instanceKey {
	return instanceKey{e.Target.Account, e.Target.Region, e.InstanceID}
}

// encodeEvent builds the message for e, or says why e cannot be published:
// an unsafe subject token or ID, or an encoding failure. It never returns a
// message with an unchecked subject.
func encodeEvent(prefix string, e watcher.Event) (*nats.Msg, error) {
	// The ID goes into a header: it must not be able to forge another one.
	if err := watcher.ValidateToken(e.ID); err != nil {
		return nil, fmt.Errorf("event id %s: %w", watcher.Quote(e.ID), err)
	}
	subject, err := e.Subject(prefix)
	if err != nil {
		return nil, err
	}
	data, err := watcher.MarshalCloudEvent(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(HeaderContentType, watcher.ContentType)
	m.Header.Set(HeaderMsgID, e.ID)
	return m, nil
}

// prefixOrDefault returns prefix, or DefaultPrefix when it is empty, after
// checking that it is made of safe tokens.
func prefixOrDefault(prefix string) (string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := watcher.ValidatePrefix(prefix); err != nil {
		return "", err
	}
	return prefix, nil
}

// toMessage copies m so a recorded message shares nothing with the caller.
func toMessage(m *nats.Msg) Message {
	h := make(nats.Header, len(m.Header))
	for k, v := range m.Header {
		h[k] = append([]string(nil), v...)
	}
	return Message{Subject: m.Subject, Header: h, Data: append([]byte(nil), m.Data...)}
}
