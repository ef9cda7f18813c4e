package publisher

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// FuzzReadPlainAck checks the reflection-free reading of acks against
// encoding/json: whatever it accepts, json.Unmarshal reads the same ack
// from, and the acks the server sends are accepted.
func FuzzReadPlainAck(f *testing.F) {
	for _, seed := range []string{
		`{"stream":"CVMWATCH","seq":1}`,
		`{"stream":"CVMWATCH","seq":18446744073709551615,"duplicate":true}`,
		`{"stream":"CVMWATCH","seq":3,"duplicate": true}`,
		`{"stream":"CVMWATCH","seq":03}`,
		`{"stream":"CVMWATCH","seq":7,"domain":"hub"}`,
		`{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}`,
		`{"stream":"a\"b","seq":1}`,
		`{"stream":"","seq":1}`,
		`{"stream":"S","seq":}`,
		`{"stream":"S","seq":1}x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := &asyncJS{}
		got, ok := a.readPlainAck(data)
		if !ok {
			return
		}
		var want jetstream.PubAck
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
		if *got != want {
			t.Fatalf("read %q as %+v, encoding/json as %+v", data, *got, want)
		}
	})
}

func TestReadPlainAckAcceptsTheServersAcks(t *testing.T) {
	a := &asyncJS{}
	for _, tt := range []struct {
		data string
		want jetstream.PubAck
	}{
		{`{"stream":"CVMWATCH","seq":1}`, jetstream.PubAck{Stream: "CVMWATCH", Sequence: 1}},
		// As nats-server 2.15 writes them (server/stream.go: the stream's
		// pubAck prefix, the sequence, and "}" or `,"duplicate": true}`).
		{`{"stream":"CVMWATCH","seq":42,"duplicate": true}`, jetstream.PubAck{Stream: "CVMWATCH", Sequence: 42, Duplicate: true}},
		{`{"stream":"CVMWATCH","seq":42,"duplicate":true}`, jetstream.PubAck{Stream: "CVMWATCH", Sequence: 42, Duplicate: true}},
	} {
		got, ok := a.readPlainAck([]byte(tt.data))
		if !ok || *got != tt.want {
			t.Errorf("readPlainAck(%s) = %+v, %v; want %+v, true", tt.data, got, ok, tt.want)
		}
	}
	for _, data := range []string{`{"stream":"S","seq":7,"domain":"hub"}`, `{"error":{"code":503}}`, `{"stream":"S","seq":99999999999999999999}`} {
		if got, ok := a.readPlainAck([]byte(data)); ok {
			t.Errorf("readPlainAck(%s) = %+v; want it left to encoding/json", data, got)
		}
	}
}
