package publisher

import (
	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher/wire"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// DefaultPrefix is the subject prefix used when a configuration leaves it
// empty (see wire.DefaultPrefix).
const DefaultPrefix = wire.DefaultPrefix

// Header names set on every published message (see package wire).
const (
	HeaderContentType = wire.HeaderContentType
	HeaderMsgID       = wire.HeaderMsgID
)

// Message is one message as a publisher sent it or a subscriber received it
// (see wire.Message).
type Message = wire.Message

// instanceKey identifies one instance across targets: two events with the
// same key must never be in flight at once.
type instanceKey struct {
	account, region, id string
}

func keyOf(e watcher.Event) instanceKey {
	return instanceKey{e.Target.Account, e.Target.Region, e.InstanceID}
}

// encodeEvent builds the message for e, or says why e cannot be published
// (see wire.EncodeEvent).
func encodeEvent(prefix string, e watcher.Event) (*nats.Msg, error) {
	m, err := wire.EncodeEvent(prefix, e)
	if err != nil {
		return nil, err
	}
	return natsMsg(m), nil
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

// natsMsg returns m as a NATS message; it shares m's header and data.
func natsMsg(m wire.Message) *nats.Msg {
	return &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
}
