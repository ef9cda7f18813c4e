package publisher_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestStreamReadyWaitsForTheServer: a publisher made while no server is
// reachable fails its publishes with a clear error (so the relay keeps the
// outbox and retries) instead of holding its caller beyond the caller's own
// context; once the server is there it sets the stream up and publishes;
// and when the stream is deleted, it sets it up again.
func TestStreamReadyWaitsForTheServer(t *testing.T) {
	t.Parallel()
	port := publishertest.RestartablePort(t) // the server starts on it later
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:" + strconv.Itoa(port)}})
	js := MustJetStream(t, nc, 5*time.Second)
	p, err := publisher.NewStreamReady(js, publisher.StreamConfig{Name: "LATE", Prefix: "late"},
		publisher.JetStreamConfig{Prefix: "late", AckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events := publishertest.Events([]watcher.Target{prod}, 5, 20)

	// With no server, a set-up attempt is in flight (it waits for its own
	// timeout): a caller whose context ends gets its own reason back at
	// once, not the attempt's, and nothing is acked.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	acked, err := p.Publish(ctx, events)
	cancel()
	if acked != 0 || err == nil || !strings.Contains(err.Error(), "nats stream LATE not set up yet") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with no server = %d, %v; want 0 and a set-up error", acked, err)
	}
	mine := errors.New("this caller gave up")
	ctx, cancelCause := context.WithCancelCause(t.Context())
	cancelCause(mine)
	if err := p.PublishScan(ctx, watcher.ScanSummary{Target: prod}); !errors.Is(err, mine) {
		t.Fatalf("a caller that has given up waited for the attempt in flight: %v", err)
	}

	MustStartEmbedded(t, publisher.EmbeddedConfig{Port: port})
	publishAll := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			acked, err := p.Publish(t.Context(), events)
			if err == nil && acked == len(events) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Publish %s: %d, %v", what, acked, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	msgs := func() uint64 {
		t.Helper()
		s, err := js.Stream(t.Context(), "LATE")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	publishAll("after the server came up")
	if n := msgs(); n != uint64(len(events)) {
		t.Fatalf("stream holds %d messages, want %d", n, len(events))
	}

	// The stream is deleted under the publisher: the next publish fails,
	// and a later one sets the stream up again and goes through.
	if err := js.DeleteStream(t.Context(), "LATE"); err != nil {
		t.Fatal(err)
	}
	if acked, err := p.Publish(t.Context(), events); acked != 0 || err == nil {
		t.Fatalf("Publish to a deleted stream = %d, %v; want a failure", acked, err)
	}
	publishAll("after the stream was deleted")
	if n := msgs(); n != uint64(len(events)) {
		t.Fatalf("recreated stream holds %d messages, want %d", n, len(events))
	}
}
