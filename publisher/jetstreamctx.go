package publisher

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AsyncMaxPending is the limit NewJetStreamContext puts on async publishes
// awaiting an ack on one connection, shared by every target's relay: 16 full
// windows, so that after an outage 16 targets drain at once without stalling
// (more wait their turn: a stalled publish fails after the ack timeout and is
// retried, never lost). nats.go's default of 4000 would let two targets stall
// each other.
const AsyncMaxPending = 16 * DefaultWindow

// NewJetStreamContext returns the JetStream context the daemon's publishers
// share on nc. Its PublishMsgAsync without options takes the light path
// (lightAsync: the relay's events, about 0.05 more of raw PublishAsync's
// rate, see docs/BENCHMARKS.md); with options, and for everything else, it
// is the library's. Async publishes time out after DefaultAckTimeout, so
// that a timed-out publish is forgotten, never retried behind a later event
// (see NewJetStream), and at most AsyncMaxPending await an ack.
func NewJetStreamContext(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(DefaultAckTimeout),
		jetstream.WithPublishAsyncMaxPending(AsyncMaxPending))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return lightAsync(js, DefaultAckTimeout, AsyncMaxPending), nil
}
