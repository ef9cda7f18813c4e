package publisher_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
)

// MustStartEmbedded starts an embedded server and shuts it down with the test.
func MustStartEmbedded(tb testing.TB, cfg publisher.EmbeddedConfig) *publisher.Embedded {
	tb.Helper()
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = tb.TempDir()
	}
	e, err := publisher.StartEmbedded(cfg)
	if err != nil {
		tb.Fatalf("StartEmbedded: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	return e
}

// MustConnect connects to url with fast reconnects and closes with the test.
func MustConnect(tb testing.TB, cfg publisher.ConnConfig) *nats.Conn {
	tb.Helper()
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 50 * time.Millisecond
	}
	nc, err := publisher.Connect(cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// MustJetStream returns a JetStream context whose async publishes time out
// like the publisher's.
func MustJetStream(tb testing.TB, nc *nats.Conn, ackTimeout time.Duration) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		tb.Fatalf("jetstream.New: %v", err)
	}
	return publisher.LightAsync(js, ackTimeout, publisher.AsyncMaxPending)
}

// testLogger logs to the test output, so failures come with the NATS client's
// view of the connection.
// Lines logged after the test ended (the client's handlers run on their own
// goroutine) are dropped.
func testLogger(tb testing.TB) *slog.Logger {
	w := &tWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// MustNewJetStream returns a JetStream publisher on js, failing the test if
// cfg is refused.
func MustNewJetStream(tb testing.TB, js jetstream.JetStream, cfg publisher.JetStreamConfig) *publisher.JetStream {
	tb.Helper()
	p, err := publisher.NewJetStream(js, cfg)
	if err != nil {
		tb.Fatalf("NewJetStream: %v", err)
	}
	return p
}
