package publisher

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readAck returns the stream's ack in m, or why it is not one.
func (a *asyncJS) readAck(m *nats.Msg) (*jetstream.PubAck, error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return nil, jetstream.ErrNoStreamResponse
		}
		return nil, jetstream.ErrInvalidJSAck
	}
	if ack, ok := a.readPlainAck(m.Data); ok {
		return ack, nil
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
		jetstream.PubAck
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if resp.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &resp.PubAck, nil
}

// readPlainAck reads the usual ack, {"stream":"S","seq":N} with
// ,"duplicate":true or not, without reflection; ok is false for anything
// else (which json.Unmarshal reads).
func (a *asyncJS) readPlainAck(data []byte) (*jetstream.PubAck, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"stream":"`))
	if !ok {
		return nil, false
	}
	name, rest, ok := bytes.Cut(rest, []byte(`"`))
	if !ok || len(name) == 0 || !plainJSONString(name) {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"seq":`)); !ok {
		return nil, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 1 && rest[0] == '0' {
		return nil, false // JSON has no leading zeros
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return nil, false
	}
	dup := false
	switch tail := rest[n:]; {
	case string(tail) == `}`:
	case string(tail) == `,"duplicate": true}`, string(tail) == `,"duplicate":true}`: // the server writes the first
		dup = true
	default:
		return nil, false
	}
	if string(name) != a.stream {
		a.stream = string(name)
	}
	return &jetstream.PubAck{Stream: a.stream, Sequence: seq, Duplicate: dup}, true
}

// plainJSONString reports whether b, between quotes, is a JSON string that
// means itself: printable ASCII, no escape.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}
