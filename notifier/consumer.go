package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of ConsumerConfig.
const (
	DefaultAckWait    = 30 * time.Second
	DefaultMaxPending = 20000
	lagEvery          = 5 * time.Second
)

// ConsumerConfig says what the notifier reads.
type ConsumerConfig struct {
	// Stream holds the events; Durable names the consumer (its position
	// survives restarts); Filter is its subject filter (Router.Filter).
	Stream, Durable, Filter string
	// AckWait: an event read and not yet acknowledged is kept alive (in
	// progress) every AckWait/3, and redelivered by the server if the
	// notifier is gone that long. 0: DefaultAckWait.
	AckWait time.Duration
	// MaxPending bounds the events read and not yet acknowledged. 0:
	// DefaultMaxPending.
	MaxPending int
	// StartBack: a consumer created afresh starts with the events of this
	// long ago (the pipeline's max age), not the whole history.
	StartBack time.Duration
	Logger    *slog.Logger
	Metrics   *Metrics
}

// Consumer reads the stream with a durable pull consumer, explicit
// acknowledgement, and hands each event to a Pipeline; it acknowledges an
// event once the pipeline reports it done. An event it cannot decode is
// terminated (logged, never retried).
type Consumer struct {
	cfg  ConsumerConfig
	cons jetstream.Consumer
	log  *slog.Logger

	mu      sync.Mutex
	pending map[uint64]jetstream.Msg // by stream sequence
}

// NewConsumer creates the durable consumer, or updates its filter if it
// exists (keeping its position).
func NewConsumer(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) (*Consumer, error) {
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = newDiscardMetrics()
	}
	cc := jetstream.ConsumerConfig{
		Durable: cfg.Durable, Description: "cvmwatch notify",
		FilterSubject: cfg.Filter, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: cfg.AckWait, MaxAckPending: cfg.MaxPending, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	existing, err := js.Consumer(ctx, cfg.Stream, cfg.Durable)
	switch {
	case err == nil:
		info := existing.CachedInfo()
		cc.DeliverPolicy, cc.OptStartTime, cc.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartTime, info.Config.OptStartSeq
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if cfg.StartBack > 0 {
			start := time.Now().Add(-cfg.StartBack)
			cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
		}
	default:
		return nil, fmt.Errorf("consumer %s on stream %s: %w", cfg.Durable, cfg.Stream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on stream %s: %w", cfg.Durable, cfg.Stream, err)
	}
	return &Consumer{cfg: cfg, cons: cons, log: cfg.Logger, pending: map[uint64]jetstream.Msg{}}, nil
}

// Run reads events into p until ctx ends, or until the consumer fails
// (deleted, its connection closed, the dedupe memory unreadable): it then
// hands the events still pending back and returns the error (nil when ctx
// ended or the connection was closed). p must be running (Pipeline.Run);
// the caller may Run a new Consumer on the same p, which recognises the
// events it still holds when they come again.
func (c *Consumer) Run(ctx context.Context, p *Pipeline) error {
	ctx, cancel := context.WithCancel(ctx) // ends keepAlive and watchLag with Run
	defer cancel()
	it, err := c.cons.Messages(jetstream.PullMaxMessages(min(c.cfg.MaxPending, 1000)))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.cfg.Durable, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer c.release()
	go c.keepAlive(ctx)
	go c.watchLag(ctx)
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("consumer %s: %w", c.cfg.Durable, err)
		}
		if err := c.handle(ctx, p, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// handle decodes m and submits it; its ack waits for the pipeline.
func (c *Consumer) handle(ctx context.Context, p *Pipeline, m jetstream.Msg) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("consumer %s: metadata: %w", c.cfg.Durable, err)
	}
	e, err := DecodeEvent(m.Data())
	if err != nil {
		c.log.Error("undecodable event skipped", "subject", m.Subject(), "seq", md.Sequence.Stream, "err", err)
		return m.Term()
	}
	e.Raw = append([]byte(nil), m.Data()...)
	seq := md.Sequence.Stream
	c.mu.Lock()
	c.pending[seq] = m
	c.cfg.Metrics.Pending.Set(float64(len(c.pending)))
	c.mu.Unlock()
	return p.Submit(ctx, e, time.Now(), func() {
		if err := m.Ack(); err != nil {
			// Redelivered then, and recognised as sent.
			c.log.Warn("ack failed; the event will be redelivered and skipped", "seq", seq, "err", err)
		}
		c.mu.Lock()
		delete(c.pending, seq)
		c.cfg.Metrics.Pending.Set(float64(len(c.pending)))
		c.mu.Unlock()
	})
}

// release hands the events still pending back to the server on the way
// out (Nak), so that the next run gets them at once instead of after
// AckWait. After a crash the server redelivers them after AckWait.
func (c *Consumer) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq, m := range c.pending {
		_ = m.Nak()
		delete(c.pending, seq)
	}
}

// keepAlive tells the server every AckWait/3 that the events still
// pending are being worked on, so it does not redeliver them while a sink
// is throttled or down.
func (c *Consumer) keepAlive(ctx context.Context) {
	t := time.NewTicker(c.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(c.pending))
		for _, m := range c.pending {
			msgs = append(msgs, m)
		}
		c.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress() // a failure shows as a redelivery, which dedupes
		}
	}
}

// watchLag publishes the consumer's pending count as the lag metric.
func (c *Consumer) watchLag(ctx context.Context) {
	t := time.NewTicker(lagEvery)
	defer t.Stop()
	for {
		if info, err := c.cons.Info(ctx); err == nil {
			c.cfg.Metrics.Lag.Set(float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Lag is the number of events in the stream not yet delivered to the
// consumer.
func (c *Consumer) Lag(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending, nil
}
