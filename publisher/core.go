package publisher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// DefaultFlushTimeout bounds the flush of a core NATS publish when the
// caller's context has no deadline.
const DefaultFlushTimeout = 5 * time.Second

// CoreConfig configures a core NATS publisher.
type CoreConfig struct {
	// Prefix is the subject prefix; default "cvm".
	Prefix string
}

// Core publishes events with core NATS, for servers without JetStream. Its
// guarantee is weaker than JetStream's: "acked" only means the server
// received the events (a flush round trip succeeded), not that anyone stored
// them. Nothing is persisted and nothing is de-duplicated: a subscriber that
// is not connected at that moment misses the events, and an event re-sent
// after a failure is delivered twice (consumers can de-duplicate on the
// event id, which is also sent as Nats-Msg-Id so a JetStream stream on these
// subjects would drop the copy). Core is safe for concurrent use.
type Core struct {
	nc     *nats.Conn
	prefix string
}

var _ watcher.Publisher = (*Core)(nil)

// NewCore returns a publisher on nc.
func NewCore(nc *nats.Conn, cfg CoreConfig) (*Core, error) {
	if nc == nil {
		return nil, errors.New("core publisher: nil connection")
	}
	prefix, err := prefixOrDefault(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("core publisher: %w", err)
	}
	return &Core{nc: nc, prefix: prefix}, nil
}

// Publish sends events in order, then flushes. If the flush succeeds, the
// events sent count as acked; if it fails, none do (acked = 0). An event with
// an unsafe subject token or ID is not sent, nor anything after it: the
// events before it are flushed and count, and the error says why it was
// refused. When the connection is not up, nothing is sent (so that a
// reconnect does not deliver a batch that the caller will send again).
func (c *Core) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	if st := c.nc.Status(); st != nats.CONNECTED {
		return 0, fmt.Errorf("publish: connection %s: %w", st, nats.ErrDisconnected)
	}
	n := len(events)
	var refused error
	for i, e := range events {
		msg, err := encodeEvent(c.prefix, e)
		if err != nil {
			n, refused = i, fmt.Errorf("publish event %s (%d of %d): %w", e.ID, i+1, len(events), err)
			break
		}
		if err := c.nc.PublishMsg(msg); err != nil {
			return 0, fmt.Errorf("publish event %s (%d of %d): %w", e.ID, i+1, len(events), err)
		}
	}
	if n == 0 {
		return 0, refused
	}
	if err := c.flush(ctx); err != nil {
		return 0, fmt.Errorf("publish %d events: flush: %w", n, err)
	}
	return n, refused
}

// PublishScan sends the summary and flushes. Best effort.
func (c *Core) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	msg, err := encodeScan(c.prefix, s)
	if err != nil {
		return fmt.Errorf("publish scan summary: %w", err)
	}
	if err := c.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("publish scan summary %s: %w", s.Target, err)
	}
	if err := c.flush(ctx); err != nil {
		return fmt.Errorf("publish scan summary %s: flush: %w", s.Target, err)
	}
	return nil
}

func (c *Core) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultFlushTimeout)
		defer cancel()
	}
	return c.nc.FlushWithContext(ctx)
}
