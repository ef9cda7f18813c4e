package publishertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/wire"
)

// Reader returns what a publisher's subscribers can see.
type Reader interface {
	// Messages waits until at least n messages have been stored (stream) or
	// received (subscription), then returns all of them so far, possibly
	// more than n, in the order stored or received. On ctx's end it returns
	// what it has with an error.
	Messages(ctx context.Context, n int) ([]publisher.Message, error)
}

// ReaderFunc adapts a function to Reader.
type ReaderFunc func(ctx context.Context, n int) ([]publisher.Message, error)

// Messages calls f.
func (f ReaderFunc) Messages(ctx context.Context, n int) ([]publisher.Message, error) {
	return f(ctx, n)
}

// NewStreamReader reads a JetStream stream back from its first message with
// an ordered consumer; every call reads the whole stream again, so it sees
// exactly what the stream holds (after a reconnect or a server restart too).
func NewStreamReader(js jetstream.JetStream, stream string) Reader {
	return NewStreamsReader(js, stream)
}

// NewStreamsReader reads several JetStream streams back, as NewStreamReader
// reads one, and returns their messages merged in the order the streams
// stored them (by stored time): the event stream and the scans stream, read
// as the one stream a subscriber to "<prefix>.>" would see.
func NewStreamsReader(js jetstream.JetStream, streams ...string) Reader {
	return ReaderFunc(func(ctx context.Context, n int) ([]publisher.Message, error) {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		counts := make([]uint64, len(streams))
		for {
			var total uint64
			for i, name := range streams {
				s, err := js.Stream(ctx, name)
				if err != nil {
					return nil, fmt.Errorf("read stream %s: %w", name, err)
				}
				info, err := s.Info(ctx)
				if err != nil {
					return nil, fmt.Errorf("read stream %s: %w", name, err)
				}
				counts[i] = info.State.Msgs
				total += counts[i]
			}
			if total >= uint64(n) {
				break
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return nil, fmt.Errorf("read stream %s: %d messages, want %d: %w", strings.Join(streams, "+"), total, n, ctx.Err())
			}
		}
		var all []storedMsg
		for i, name := range streams {
			msgs, err := readStored(ctx, js, name, counts[i])
			if err != nil {
				return nil, err
			}
			all = append(all, msgs...)
		}
		slices.SortStableFunc(all, func(a, b storedMsg) int { return a.at.Compare(b.at) })
		out := make([]publisher.Message, len(all))
		for i, m := range all {
			out[i] = m.msg
		}
		return out, nil
	})
}

type storedMsg struct {
	msg publisher.Message
	at  time.Time
}

// readStored reads the first count messages of stream.
func readStored(ctx context.Context, js jetstream.JetStream, stream string, count uint64) ([]storedMsg, error) {
	if count == 0 {
		return nil, nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	out := make([]storedMsg, 0, count)
	for uint64(len(out)) < count {
		batch, err := cons.Fetch(int(count)-len(out), jetstream.FetchContext(ctx))
		if err != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return out, fmt.Errorf("read stream %s: %w", stream, err)
			}
			out = append(out, storedMsg{at: md.Timestamp, msg: publisher.Message{
				Subject: m.Subject(),
				Header:  wire.Header(m.Headers()),
				Data:    append([]byte(nil), m.Data()...),
			}})
		}
		if err := batch.Error(); err != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
	}
	return out, nil
}

// NewSubscriptionReader subscribes to subject on nc now (before anything is
// published) and returns what that subscription receives. The subscription
// ends with the test.
func NewSubscriptionReader(t testing.TB, nc *nats.Conn, subject string) Reader {
	t.Helper()
	r := &subReader{changed: make(chan struct{})}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, publisher.Message{Subject: m.Subject, Header: wire.Header(m.Header), Data: m.Data})
		close(r.changed)
		r.changed = make(chan struct{})
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush subscription %s: %v", subject, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

type subReader struct {
	mu      sync.Mutex
	msgs    []publisher.Message
	changed chan struct{}
}

func (r *subReader) Messages(ctx context.Context, n int) ([]publisher.Message, error) {
	for {
		r.mu.Lock()
		msgs, ch := append([]publisher.Message(nil), r.msgs...), r.changed
		r.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("received %d messages, want %d: %w", len(msgs), n, ctx.Err())
		}
	}
}
