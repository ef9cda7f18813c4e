package watcher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CloudEvents attributes of the event contract (version 1). Changing the
// body's shape means new type names, never an edit of these.
const (
	ContentType = "application/cloudevents+json"

	TypeAppeared     = "io.github.cvmwatch.instance.appeared.v1"
	TypeStateChanged = "io.github.cvmwatch.instance.state_changed.v1"
	TypeDisappeared  = "io.github.cvmwatch.instance.disappeared.v1"
	// TypeAttributed is the follow-up that names who made the operation of
	// an event published without its actor (see Attributed).
	TypeAttributed = "io.github.cvmwatch.instance.attributed.v1"
	// TypeOperation is an operation that left no visible state change (see
	// OperationEvent).
	TypeOperation = "io.github.cvmwatch.instance.operation.v1"

	// TimeFormat is RFC 3339 in UTC with milliseconds, always 3 digits.
	TimeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// EventID returns the stable id of a transition: the same target, instance,
// sequence, from and to always give the same id, whoever observes it and
// when, so a retry or a takeover re-publishing it is a duplicate the broker
// drops.
func EventID(t Target, instanceID string, seq uint64, from, to State) string {
	h := sha256.New()
	for _, s := range []string{t.Account, t.Region, instanceID, strconv.FormatUint(seq, 10), string(from), string(to)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Type returns the CloudEvents type of e.
func (e Event) Type() string {
	switch {
	case e.Completes != "":
		return TypeAttributed
	case e.IsOperation():
		return TypeOperation
	case e.From == Absent:
		return TypeAppeared
	case e.To == Absent:
		return TypeDisappeared
	default:
		return TypeStateChanged
	}
}

// Subject returns "<prefix>.state.<account>.<region>.<instanceId>.<FROM>.<TO>",
// for a follow-up (TypeAttributed)
// "<prefix>.attribution.<account>.<region>.<instanceId>", and for an
// operation event (TypeOperation)
// "<prefix>.operation.<account>.<region>.<instanceId>". Every token is
// checked; an unsafe one is an error, never published raw.
func (e Event) Subject(prefix string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	// Built in one allocation: the relay computes a subject per event.
	kind, parts := ".state.", [...]string{e.Target.Account, e.Target.Region, e.InstanceID, string(e.From), string(e.To)}
	n := len(parts)
	switch {
	case e.Completes != "":
		kind, n = ".attribution.", 3
	case e.IsOperation():
		kind, n = ".operation.", 3
	}
	size := len(prefix) + len(kind) + n - 1
	for _, p := range parts[:n] {
		if err := ValidateToken(p); err != nil {
			return "", fmt.Errorf("event %s subject token %s: %w", e.ID, Quote(p), err)
		}
		size += len(p)
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteString(prefix)
	sb.WriteString(kind)
	for i, p := range parts[:n] {
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(p)
	}
	return sb.String(), nil
}

// ScanSubject returns "<prefix>.scan.<account>.<region>".
func ScanSubject(prefix string, t Target) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	for _, p := range []string{t.Account, t.Region} {
		if err := ValidateToken(p); err != nil {
			return "", fmt.Errorf("target %s: %w", Quote(p), err)
		}
	}
	return prefix + ".scan." + t.Account + "." + t.Region, nil
}

// ValidatePrefix checks a subject prefix: one or more safe tokens joined by
// dots ("cvm", "prod.cvm").
func ValidatePrefix(prefix string) error {
	for rest, more := prefix, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if err := ValidateToken(tok); err != nil {
			return fmt.Errorf("subject prefix %s: %w", Quote(prefix), err)
		}
	}
	return nil
}

// cloudEvent is the structured-mode JSON body, fields in contract order.
type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            string    `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            EventData `json:"data"`
}

// EventData is the data of every instance event, as subscribers decode it.
type EventData struct {
	Account            string `json:"account"`
	Region             string `json:"region"`
	InstanceID         string `json:"instanceId"`
	From               State  `json:"from"`
	To                 State  `json:"to"`
	Sequence           uint64 `json:"sequence"`
	ObservedAt         string `json:"observedAt"`
	PreviousObservedAt string `json:"previousObservedAt,omitempty"`
	// Completes is set only in a follow-up (TypeAttributed): the id of the
	// event it completes. A follow-up has no from, to or sequence (see
	// AttributedData for its shape).
	Completes string `json:"completes,omitempty"`
	// State is set only in an operation event (TypeOperation): the
	// unchanged state. It has no from, to or sequence (see
	// OperationEventData for its shape).
	State State `json:"state,omitempty"`
	// Instance and Operation are the enrichment: optional, additive.
	Instance  *InstanceData  `json:"instance,omitempty"`
	Operation *OperationData `json:"operation,omitempty"`
}

// appendEnvelope appends the CloudEvent attributes of e with type typ and
// the start of its data (account, region, instanceId), which every event
// type shares; the caller appends the rest of data and closes both objects.
func appendEnvelope(b []byte, e Event, typ string) []byte {
	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"source":`...)
	if plainJSON(e.Target.Account) && plainJSON(e.Target.Region) {
		b = append(b, `"cvmwatch/`...) // what appendJSONString gives, without the concatenation
		b = append(b, e.Target.Account...)
		b = append(b, '/')
		b = append(b, e.Target.Region...)
		b = append(b, '"')
	} else {
		b = appendJSONString(b, "cvmwatch/"+e.Target.Account+"/"+e.Target.Region)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"subject":`...)
	b = appendJSONString(b, e.InstanceID)
	b = append(b, `,"time":"`...)
	b = appendTime(b, e.ObservedAt)
	b = append(b, `","datacontenttype":"application/json","data":{"account":`...)
	b = appendJSONString(b, e.Target.Account)
	b = append(b, `,"region":`...)
	b = appendJSONString(b, e.Target.Region)
	b = append(b, `,"instanceId":`...)
	return appendJSONString(b, e.InstanceID)
}

// MarshalCloudEvent encodes e as a CloudEvents 1.0 structured JSON body.
// The output is deterministic: the same event always gives the same bytes,
// exactly those encoding/json gives for the contract's field order (a test
// holds it to that). It is appended by hand because the relay encodes every
// event it publishes.
func MarshalCloudEvent(e Event) ([]byte, error) {
	return AppendCloudEvent(make([]byte, 0, 512), e)
}

// AppendCloudEvent appends to dst the bytes MarshalCloudEvent gives for e
// and returns the extended slice: the relay's publisher reuses one buffer
// per event in flight instead of allocating one per event.
func AppendCloudEvent(dst []byte, e Event) ([]byte, error) {
	switch {
	case e.Completes != "": // rare types: copied from their own buffer
		return appendMarshaled(dst, marshalAttributed, e)
	case e.IsOperation():
		return appendMarshaled(dst, marshalOperation, e)
	}
	b := appendEnvelope(dst, e, e.Type())
	b = append(b, `,"from":`...)
	b = appendJSONString(b, string(e.From))
	b = append(b, `,"to":`...)
	b = appendJSONString(b, string(e.To))
	b = append(b, `,"sequence":`...)
	b = strconv.AppendUint(b, e.Sequence, 10)
	b = appendWindowAndInstance(b, e)
	if e.Operation != nil {
		b = append(b, `,"operation":`...)
		b = appendOperationActor(b, e.Operation, e.Actor)
	}
	return append(b, "}}"...), nil
}

// appendMarshaled appends what marshal gives for e to dst.
func appendMarshaled(dst []byte, marshal func(Event) ([]byte, error), e Event) ([]byte, error) {
	b, err := marshal(e)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (which includes <, > and &, and turns invalid UTF-8 into
// U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	if !plainJSON(s) {
		q, _ := json.Marshal(s) // rare: tokens are validated, names and tags mostly plain
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON reports whether s goes into a JSON string as it is, unescaped.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendTime appends t in TimeFormat; by hand for years 0-9999 (the relay
// formats two times per event), through time.AppendFormat otherwise.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// UnmarshalCloudEvent decodes a body made by MarshalCloudEvent.
func UnmarshalCloudEvent(b []byte) (Event, error) {
	var ce cloudEvent
	if err := json.Unmarshal(b, &ce); err != nil {
		return Event{}, fmt.Errorf("cloudevent: %w", err)
	}
	if ce.SpecVersion != "1.0" {
		return Event{}, fmt.Errorf("cloudevent: specversion %s", Quote(ce.SpecVersion))
	}
	e := Event{
		ID:         ce.ID,
		Target:     Target{Account: ce.Data.Account, Region: ce.Data.Region},
		InstanceID: ce.Data.InstanceID,
		From:       ce.Data.From,
		To:         ce.Data.To,
		Sequence:   ce.Data.Sequence,
		Instance:   ce.Data.Instance.instance(),
	}
	if op := ce.Data.Operation; op != nil {
		e.Operation = &Operation{Name: op.Name, State: op.State, RequestID: op.RequestID, Error: op.Error}
		if a := op.Actor; a != nil {
			e.Actor = &Actor{Username: a.Username, SourceIP: a.SourceIP, EventName: a.EventName}
		}
	}
	e.Completes = ce.Data.Completes
	if ce.Type == TypeOperation {
		e.From, e.To = ce.Data.State, ce.Data.State
	}
	var err error
	if e.ObservedAt, err = time.Parse(time.RFC3339Nano, ce.Data.ObservedAt); err != nil {
		return Event{}, fmt.Errorf("cloudevent: observedAt: %w", err)
	}
	if ce.Data.PreviousObservedAt != "" {
		if e.PreviousObservedAt, err = time.Parse(time.RFC3339Nano, ce.Data.PreviousObservedAt); err != nil {
			return Event{}, fmt.Errorf("cloudevent: previousObservedAt: %w", err)
		}
	}
	if ce.Type != e.Type() {
		return Event{}, fmt.Errorf("cloudevent: type %s does not match %s -> %s", Quote(ce.Type), e.From, e.To)
	}
	return e, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// appendWindowAndInstance appends observedAt, previousObservedAt (when
// set) and instance (when known): the part of data a transition and an
// operation event share.
func appendWindowAndInstance(b []byte, e Event) []byte {
	b = append(b, `,"observedAt":"`...)
	b = appendTime(b, e.ObservedAt)
	b = append(b, '"')
	if !e.PreviousObservedAt.IsZero() {
		b = append(b, `,"previousObservedAt":"`...)
		b = appendTime(b, e.PreviousObservedAt)
		b = append(b, '"')
	}
	if e.Instance != nil {
		b = append(b, `,"instance":`...)
		b = appendInstance(b, e.Instance)
	}
	return b
}
