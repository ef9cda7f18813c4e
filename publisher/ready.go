package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Timing of StreamReady's set-up attempts.
const (
	// streamSetupTimeout bounds one attempt: until a JetStream server is
	// reachable its API calls time out rather than fail.
	streamSetupTimeout = 10 * time.Second
	// streamSetupRetry is the least time between the starts of two
	// attempts, however many relays ask: a down server is not asked once
	// per target.
	streamSetupRetry = time.Second
)

// StreamReady is a JetStream publisher that sets the stream up before its
// first publish, so that a daemon can start, scan and fill its outbox while
// the server is unreachable, and sets it up again when a publish finds it
// gone (deleted, or a server that came back without its JetStream store).
// Until the stream is there, Publish and PublishScan return why, and the
// relay retries them later as it does any failed publish. It is safe for
// concurrent use.
type StreamReady struct {
	js     jetstream.JetStream
	stream StreamConfig
	pub    watcher.Publisher
	log    *slog.Logger

	mu      sync.Mutex
	ready   bool
	status  []StreamStatus // of the streams once set up
	attempt *setupAttempt  // the attempt in flight, or the last one
}

// setupAttempt is one run of EnsureStream, shared by every caller that
// asks while it runs (and, once failed, for streamSetupRetry after it
// started).
type setupAttempt struct {
	started time.Time
	done    chan struct{} // closed when err is set
	err     error
}

func (a *setupAttempt) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
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
	return NewStreamReadyFor(js, stream, pub), nil
}

// NewStreamReadyFor returns a publisher that ensures stream on js (see
// EnsureStream) before it publishes with pub (a publisher on js, such as
// FencedBatch).
func NewStreamReadyFor(js jetstream.JetStream, stream StreamConfig, pub watcher.Publisher) *StreamReady {
	if stream.Logger == nil {
		stream.Logger = slog.New(slog.DiscardHandler)
	}
	if stream.Name == "" {
		stream.Name = DefaultStreamName
	}
	return &StreamReady{js: js, stream: stream, pub: pub, log: stream.Logger}
}

// Ensure sets the stream up unless that is done. Callers that ask while an
// attempt runs wait for that attempt, each only as long as its own ctx
// allows; a failed attempt's error is returned again until a second has
// passed since it started.
func (p *StreamReady) Ensure(ctx context.Context) error {
	p.mu.Lock()
	if p.ready {
		p.mu.Unlock()
		return nil
	}
	a := p.attempt
	if a == nil || (a.finished() && time.Since(a.started) >= streamSetupRetry) {
		a = &setupAttempt{started: time.Now(), done: make(chan struct{})}
		p.attempt = a
		go p.run(a)
	}
	p.mu.Unlock()
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return fmt.Errorf("nats stream %s not set up yet: %w", p.stream.Name, context.Cause(ctx))
	}
}

// run makes one attempt. It belongs to no caller, so a caller that gives up
// does not cut it short for the others; its own timeout bounds it.
func (p *StreamReady) run(a *setupAttempt) {
	ctx, cancel := context.WithTimeout(context.Background(), streamSetupTimeout)
	defer cancel()
	events, scans, err := ensureStreams(ctx, p.js, p.stream)
	p.mu.Lock()
	if err != nil {
		a.err = fmt.Errorf("nats stream %s not set up yet: %w", p.stream.Name, err)
	} else {
		p.ready = true
		p.status = []StreamStatus{streamStatus(events.CachedInfo())}
		if scans != nil {
			p.status = append(p.status, streamStatus(scans.CachedInfo()))
		}
		for _, st := range p.status {
			p.log.Info("nats stream ready", "stream", st.Name, "subjects", st.Subjects, "replicas", st.Replicas)
		}
	}
	p.mu.Unlock()
	close(a.done)
}

// StreamStatus is what a daemon shows of a stream it set up.
type StreamStatus struct {
	Name     string   `json:"name"`
	Subjects []string `json:"subjects"`
	Replicas int      `json:"replicas"`
}

func streamStatus(info *jetstream.StreamInfo) StreamStatus {
	return StreamStatus{Name: info.Config.Name, Subjects: info.Config.Subjects, Replicas: info.Config.Replicas}
}

// Streams returns the streams as the last successful set-up found them,
// or nil before one succeeded.
func (p *StreamReady) Streams() []StreamStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.status)
}

// Publish sends events once the stream is set up; see JetStream.Publish
// (or the Publish of NewStreamReadyFor's pub).
func (p *StreamReady) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	if err := p.Ensure(ctx); err != nil {
		return 0, err
	}
	n, err := p.pub.Publish(ctx, events)
	p.noteLoss(err)
	return n, err
}

// PublishScan sends a scan summary once the stream is set up; see
// JetStream.PublishScan.
func (p *StreamReady) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	if err := p.Ensure(ctx); err != nil {
		return err
	}
	err := p.pub.PublishScan(ctx, s)
	p.noteLoss(err)
	return err
}

// noteLoss makes the next call set the stream up again when err says no
// stream took the message: it was deleted, or the server lost its store.
func (p *StreamReady) noteLoss(err error) {
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		p.ready = false
		p.log.Warn("nats stream gone: setting it up again", "stream", p.stream.Name, "err", err)
	}
}
