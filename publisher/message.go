package publisher

import (
	"hash/maphash"
	"math/bits"

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

// instanceHash identifies e's instance across targets for the rule that two
// events of one instance are never in flight at once: the events of one
// instance have one hash. Two instances may share a hash (about 2^-64 for a
// pair); their events are then kept apart like one instance's, which costs
// throughput and never order. One uint64 is cheaper to look up than the
// three strings it stands for.
func instanceHash(seed maphash.Seed, e watcher.Event) uint64 {
	return maphash.String(seed, e.InstanceID) ^
		bits.RotateLeft64(maphash.String(seed, e.Target.Account), 21) ^
		bits.RotateLeft64(maphash.String(seed, e.Target.Region), 42)
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
