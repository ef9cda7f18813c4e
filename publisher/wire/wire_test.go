package wire_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/wire"
)

// The encoding itself is held to its contract by the conformance suite
// (publishertest), which every publisher runs; these tests pin what the
// suite does not see.

func TestHeaderMsgIDIsJetStreams(t *testing.T) {
	if got, want := wire.HeaderMsgID, jetstream.MsgIDHeader; got != want {
		t.Fatalf("HeaderMsgID = %q, want JetStream's %q (de-duplication keys on it)", got, want)
	}
}

func TestHeaderGet(t *testing.T) {
	h := wire.Header{"Nats-Msg-Id": {"a", "b"}, "Empty": {}}
	for _, tt := range []struct{ key, want string }{
		{"Nats-Msg-Id", "a"},
		{"nats-msg-id", ""}, // keys are case-sensitive, as in NATS
		{"Empty", ""},
		{"Missing", ""},
	} {
		if got := h.Get(tt.key); got != tt.want {
			t.Fatalf("Get(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := wire.Header(nil).Get("Nats-Msg-Id"); got != "" {
		t.Fatalf("nil Header Get = %q, want empty", got)
	}
}

func TestCloneSharesNothing(t *testing.T) {
	m := wire.Message{Subject: "cvm.state.x", Header: wire.Header{"K": {"v"}}, Data: []byte("body")}
	c := m.Clone()
	m.Header["K"][0] = "changed"
	m.Header["New"] = []string{"x"}
	m.Data[0] = 'B'
	if got, want := c.Header.Get("K"), "v"; got != want {
		t.Fatalf("clone header K = %q, want %q", got, want)
	}
	if got := len(c.Header); got != 1 {
		t.Fatalf("clone has %d headers, want 1", got)
	}
	if got, want := string(c.Data), "body"; got != want {
		t.Fatalf("clone data = %q, want %q", got, want)
	}
}
