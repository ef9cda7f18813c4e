package publisher

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// ReadStream reads every state message (subjects <prefix>.state.>, prefix
// DefaultPrefix if empty) stored in stream, from its first message, with an
// ordered consumer, in the form oracle.Check takes. It returns once it has
// read every message stored when it started; on an error it returns what it
// read so far.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream, prefix string) ([]oracle.Message, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + ".state.>"},
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	want := int(info.NumPending)
	out := make([]oracle.Message, 0, want)
	for len(out) < want {
		batch, err := cons.Fetch(min(want-len(out), 1000), jetstream.FetchContext(ctx))
		if err != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return out, fmt.Errorf("read stream %s: %w", stream, err)
			}
			out = append(out, oracle.Message{
				Seq:     md.Sequence.Stream,
				Subject: m.Subject(),
				MsgID:   m.Headers().Get(HeaderMsgID),
				Data:    append([]byte(nil), m.Data()...),
			})
		}
		if err := batch.Error(); err != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, ctx.Err())
		}
	}
	return out, nil
}
