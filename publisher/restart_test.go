package publisher_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestJetStreamServerRestart shuts the server down in the middle of a
// Publish, restarts it on the same store and port, and re-sends from the
// first unacknowledged event as the relay does: the stream must end up with
// every event exactly once, each instance's events in order.
func TestJetStreamServerRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	// The server is down for a while and must come back on the same port:
	// one below the ephemeral range, which no port-0 listener can take
	// meanwhile.
	dir, port := t.TempDir(), publishertest.RestartablePort(t)
	cfg := publisher.EmbeddedConfig{Port: port, StoreDir: dir}
	first := MustStartEmbedded(t, cfg)

	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{first.ClientURL()}})
	js := MustJetStream(t, nc, 2*time.Second)
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	p, err := publisher.NewJetStream(js, publisher.JetStreamConfig{AckTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events := publishertest.Events([]watcher.Target{prod, dev}, 300, 20000)

	// Shut the server down once 2,000 events went through it.
	var seen int
	var once sync.Once
	stopped := make(chan struct{})
	sub, err := nc.Subscribe("cvm.state.>", func(*nats.Msg) {
		if seen++; seen == 2000 {
			once.Do(func() { go func() { first.Shutdown(); close(stopped) }() })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	acked, err := p.Publish(ctx, events)
	t.Logf("first Publish: acked %d of %d: %v", acked, len(events), err)
	if acked >= len(events) || err == nil {
		t.Fatalf("Publish across a server shutdown = %d, %v; want fewer than %d and an error", acked, err, len(events))
	}
	<-stopped
	_ = sub.Unsubscribe()

	reconnected := nc.StatusChanged(nats.CONNECTED)
	MustStartEmbedded(t, cfg)
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("client did not reconnect to the restarted server")
	}

	for attempt := 1; acked < len(events); attempt++ {
		if attempt > 20 {
			t.Fatalf("still %d events unacked after %d attempts", len(events)-acked, attempt-1)
		}
		n, err := p.Publish(ctx, events[acked:])
		acked += n
		if err != nil {
			t.Logf("re-send attempt %d: acked %d more: %v", attempt, n, err)
		}
	}

	msgs, err := publishertest.NewStreamReader(js, publisher.DefaultStreamName).Messages(ctx, len(events))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(events) {
		t.Fatalf("stream holds %d events, want %d (each exactly once)", len(msgs), len(events))
	}
	ids := make(map[string]bool, len(events))
	next := make(map[string]uint64)
	for i, m := range msgs {
		e, err := watcher.UnmarshalCloudEvent(m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if ids[e.ID] {
			t.Fatalf("message %d: event %s stored twice", i, e.ID)
		}
		ids[e.ID] = true
		k := fmt.Sprint(e.Target, "/", e.InstanceID)
		if want := next[k] + 1; e.Sequence != want {
			t.Fatalf("message %d: instance %s sequence %d, want %d", i, k, e.Sequence, want)
		}
		next[k] = e.Sequence
	}
}
