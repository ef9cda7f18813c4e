package publisher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Timing of StreamReady's set-up attempts.
const (
	// streamSetupTimeout bounds one attempt: until a JetStream server is
	// reachable its API calls time out rather than fail.
	streamSetupTimeout = 10 * time.Second
	// streamSetupRetry is the least time between two attempts, however many
	// relays ask: a down server is not asked once per target.
	streamSetupRetry = time.Second
)

// StreamReady is a JetStream publisher that sets the stream up before its
// first publish, so that a daemon can start, scan and fill its outbox while
// the server is unreachable. Until the stream is set up, Publish and
// PublishScan return why, and the relay retries them later as it does any
// failed publish. It is safe for concurrent use.
type StreamReady struct {
	js     jetstream.JetStream
	stream StreamConfig
	pub    *JetStream
	log    *slog.Logger

	mu      sync.Mutex
	ready   bool
	lastTry time.Time
	lastErr error
}

var _ watcher.Publisher = (*StreamReady)(nil)

// NewStreamReady returns a publisher on js that ensures stream (see
// EnsureStream) before it publishes with cfg. stream.Logger also receives
// the set-up lines.
func NewStreamReady(js jetstream.JetStream, stream StreamConfig, cfg JetStreamConfig) (*StreamReady, error) {
	pub, err := NewJetStream(js, cfg)
	if err != nil {
		return nil, err
	}
	log := stream.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StreamReady{js: js, stream: stream, pub: pub, log: log}, nil
}

// Ensure sets the stream up unless that is done. An attempt made less than
// a second ago is not repeated: its error is returned again.
func (p *StreamReady) Ensure(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		return nil
	}
	if !p.lastTry.IsZero() && time.Since(p.lastTry) < streamSetupRetry {
		return p.lastErr
	}
	sctx, cancel := context.WithTimeout(ctx, streamSetupTimeout)
	defer cancel()
	_, err := EnsureStream(sctx, p.js, p.stream)
	p.lastTry = time.Now()
	if err != nil {
		name := p.stream.Name
		if name == "" {
			name = DefaultStreamName
		}
		p.lastErr = fmt.Errorf("nats stream %s not set up yet: %w", name, err)
		return p.lastErr
	}
	p.ready, p.lastErr = true, nil
	p.log.Info("nats stream ready", "stream", p.stream.Name)
	return nil
}

// Publish sends events once the stream is set up; see JetStream.Publish.
func (p *StreamReady) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	if err := p.Ensure(ctx); err != nil {
		return 0, err
	}
	return p.pub.Publish(ctx, events)
}

// PublishScan sends a scan summary once the stream is set up; see
// JetStream.PublishScan.
func (p *StreamReady) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	if err := p.Ensure(ctx); err != nil {
		return err
	}
	return p.pub.PublishScan(ctx, s)
}
