package publisher_test

import (
	"context"
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
// outbox and retries) instead of blocking its caller, asks the server at
// most once a second however often it is called, and sets the stream up and
// publishes once the server is there.
func TestStreamReadyWaitsForTheServer(t *testing.T) {
	t.Parallel()
	// Nobody listens on the port until the server starts on it: a port
	// below the ephemeral range, which no port-0 listener can take meanwhile.
	port := publishertest.RestartablePort(t)
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:" + strconv.Itoa(port)}})
	js := MustJetStream(t, nc, 5*time.Second)
	p, err := publisher.NewStreamReady(js, publisher.StreamConfig{Name: "LATE", Prefix: "late"},
		publisher.JetStreamConfig{Prefix: "late", AckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events := publishertest.Events([]watcher.Target{prod}, 5, 20)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	acked, err := p.Publish(ctx, events)
	cancel()
	if acked != 0 || err == nil || !strings.Contains(err.Error(), "nats stream LATE not set up yet") {
		t.Fatalf("Publish with no server = %d, %v; want 0 and a set-up error", acked, err)
	}
	if again := p.PublishScan(t.Context(), watcher.ScanSummary{Target: prod}); again != err {
		t.Fatalf("a call right after a failed attempt = %v; want the same error, without asking again", again)
	}

	MustStartEmbedded(t, publisher.EmbeddedConfig{Port: port})
	deadline := time.Now().Add(30 * time.Second)
	for {
		acked, err = p.Publish(t.Context(), events)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish after the server came up: %d, %v", acked, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if acked != len(events) {
		t.Fatalf("acked %d of %d", acked, len(events))
	}
	s, err := js.Stream(t.Context(), "LATE")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(events)) {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, len(events))
	}
}
