package wire

import (
	"fmt"

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
	// window. It is JetStream's own header name (jetstream.MsgIDHeader).
	HeaderMsgID = "Nats-Msg-Id"
)

// Header holds a message's headers. Like NATS headers (nats.Header has the
// same underlying type, so one converts to the other), keys are
// case-sensitive.
type Header map[string][]string

// Get returns the first value of key, or "" if it has none.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Message is one message as a publisher sent it or a subscriber received it.
// The in-memory publisher records these; the conformance suite compares
// them.
type Message struct {
	Subject string
	Header  Header
	Data    []byte
}

// Clone returns a copy of m that shares nothing with it.
func (m Message) Clone() Message {
	h := make(Header, len(m.Header))
	for k, v := range m.Header {
		h[k] = append([]string(nil), v...)
	}
	return Message{Subject: m.Subject, Header: h, Data: append([]byte(nil), m.Data...)}
}

// EncodeEvent returns the message for e published under prefix, or says why
// e cannot be published: an unsafe subject token or ID (the error wraps
// watcher.ErrInvalidToken), or an encoding failure. It never returns a
// message with an unchecked subject or header.
func EncodeEvent(prefix string, e watcher.Event) (Message, error) {
	return new(EventBuffer).Encode(prefix, e)
}

// EventBuffer is the storage of one encoded event (header and body), reused
// by each Encode: a publisher keeps one per event in flight rather than
// allocating a header map and a body per event. Its zero value is ready.
type EventBuffer struct {
	vals   [2]string // the header's values: content type, event ID
	header Header    // keys fixed; its values are slices of vals
	data   []byte
}

// Encode returns what EncodeEvent returns for e, with the message's Header
// and Data held in b: they stay valid until the next Encode on b, which
// overwrites them.
func (b *EventBuffer) Encode(prefix string, e watcher.Event) (Message, error) {
	// The ID goes into a header: it must not be able to forge another one.
	if err := watcher.ValidateToken(e.ID); err != nil {
		return Message{}, fmt.Errorf("event id %s: %w", watcher.Quote(e.ID), err)
	}
	subject, err := e.Subject(prefix)
	if err != nil {
		return Message{}, err
	}
	if b.data == nil {
		b.data = make([]byte, 0, 512)
	}
	data, err := watcher.AppendCloudEvent(b.data[:0], e)
	if err != nil {
		return Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	b.data = data
	if b.header == nil {
		b.vals[0] = watcher.ContentType
		b.header = Header{HeaderContentType: b.vals[0:1:1], HeaderMsgID: b.vals[1:2:2]}
	}
	b.vals[1] = e.ID // the header's Nats-Msg-Id, without a map assignment
	return Message{Subject: subject, Header: b.header, Data: data}, nil
}
