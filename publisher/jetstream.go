package publisher

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/wire"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// Defaults of JetStreamConfig.
const (
	DefaultWindow     = 3900
	DefaultAckTimeout = 5 * time.Second
)

// ErrAckTimeout is wrapped by the error Publish returns when the broker did
// not acknowledge an event within JetStreamConfig.AckTimeout. The event may
// or may not be stored: re-send it with the same ID.
var ErrAckTimeout = errors.New("no ack in time")

// JetStreamConfig configures a JetStream publisher.
type JetStreamConfig struct {
	// Prefix is the subject prefix; default "cvm". The stream (EnsureStream)
	// must capture Prefix+".>".
	Prefix string
	// Window bounds the events of one Publish call in flight (sent, ack not
	// yet received); default DefaultWindow (3900).
	Window int
	// AckTimeout bounds the wait for each event's ack, counted from when it
	// was sent, and the whole of PublishScan; default 5s.
	AckTimeout time.Duration
}

// JetStream publishes events to a JetStream stream, asynchronously within a
// bounded window, and reports only what the stream acknowledged. It is safe
// for concurrent use. Concurrent Publish calls must carry events of different
// instances (the relay runs one call at a time per target), or the order
// between those calls is undefined.
type JetStream struct {
	js         jetstream.JetStream
	prefix     string
	window     int
	ackTimeout time.Duration
	seed       maphash.Seed // of instanceHash
	// windows keeps the slots of Publish calls whose every event was
	// acknowledged, with the storage of their messages, for the next call.
	windows sync.Pool // of *slots
}

// slots is the storage of one Publish call's window.
type slots struct {
	ring []inflight
	busy map[uint64]int
}

// getSlots returns a window of n slots (n <= p.window), reused when one is
// free.
func (p *JetStream) getSlots(n int) *slots {
	if s, ok := p.windows.Get().(*slots); ok && len(s.ring) >= n {
		s.ring = s.ring[:n]
		return s
	}
	return &slots{ring: make([]inflight, n), busy: make(map[uint64]int, n)}
}

// putSlots keeps s for another call. Only a window whose every event was
// acknowledged comes back: the library holds no message of it any more.
func (p *JetStream) putSlots(s *slots) {
	for i := range s.ring {
		s.ring[i].fut, s.ring[i].err = nil, nil
	}
	clear(s.busy)
	s.ring = s.ring[:cap(s.ring)]
	p.windows.Put(s)
}

var _ watcher.Publisher = (*JetStream)(nil)

// NewJetStream returns a publisher on js. The daemon's js comes from
// NewJetStreamContext, whose async publishes take a light path of their own
// (lightAsync). Another js works too: create it with
// jetstream.WithPublishAsyncTimeout(cfg.AckTimeout) (or shorter) so that the
// library, too, forgets a publish that timed out and never retries it behind
// a later event; its WithPublishAsyncMaxPending (default 4000) is shared by
// every publisher on js and should be at least Window (a publish stalled
// there fails after the library's stall wait, 200 ms, and the caller
// re-sends it). Events are published without options, so that a context of
// NewJetStreamContext takes its light path; with any other context they
// are the library's publishes.
func NewJetStream(js jetstream.JetStream, cfg JetStreamConfig) (*JetStream, error) {
	if js == nil {
		return nil, errors.New("jetstream publisher: nil jetstream context")
	}
	prefix, err := prefixOrDefault(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("jetstream publisher: %w", err)
	}
	p := &JetStream{js: js, prefix: prefix, window: cfg.Window, ackTimeout: cfg.AckTimeout, seed: maphash.MakeSeed()}
	if p.window <= 0 {
		p.window = DefaultWindow
	}
	if p.ackTimeout <= 0 {
		p.ackTimeout = DefaultAckTimeout
	}
	return p, nil
}

// inflight is one event sent and not yet resolved (acked or failed), in a
// slot of the window that the next event of the slot reuses once it is
// resolved: its message and the message's header and body stay untouched
// while the library may still re-send them.
type inflight struct {
	fut      jetstream.PubAckFuture
	deadline time.Time
	done     bool
	err      error
	msg      nats.Msg
	buf      wire.EventBuffer
}

// Publish sends events in order, each with Nats-Msg-Id = its ID, keeping at
// most Window in flight and never two of one instance (it waits for the
// earlier one's ack first), and waits for every ack. It returns the length
// of the acknowledged prefix of events; an ack for a duplicate counts. The
// error describes the first event not acknowledged: an unsafe subject token
// or ID (nothing of it is published, nor anything after it), a publish
// refused by the stream, a disconnect (the event may be stored anyway: re-send
// it), or no ack within AckTimeout (ErrAckTimeout).
//
// Once an event fails, nothing more is sent. Canceling ctx also stops
// sending, but Publish still waits for the events already sent, at most
// AckTimeout, so that no event of this call is left in flight when it
// returns: a re-send of the rest can then never overtake one of them.
func (p *JetStream) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	window := min(len(events), p.window)
	storage := p.getSlots(window)
	b := batch{ring: storage.ring, busy: storage.busy, failed: len(events)}
	defer b.stop()

	head, sent := 0, 0 // events[head:sent] are sent and not yet waited for in order
	for i, e := range events {
		if b.failed < i {
			break // an earlier event failed: nothing after it may count
		}
		if err := ctx.Err(); err != nil {
			b.fail(i, err)
			break
		}
		for ; i-head >= window; head++ {
			b.wait(head) // frees the slot of event i
		}
		if b.failed < i {
			break // the slot's event failed: the library may still hold its message
		}
		f := &b.ring[i%window]
		m, err := f.buf.Encode(p.prefix, e)
		if err != nil {
			b.fail(i, err)
			break
		}
		key := instanceHash(p.seed, e)
		if prev, ok := b.busy[key]; ok && prev >= head {
			b.wait(prev) // never two events of one instance in flight
		}
		if b.failed < i {
			break // found out while waiting
		}
		f.msg = nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
		// No options: the message carries its Nats-Msg-Id header already
		// (wire.EncodeEvent), and a context of NewJetStreamContext sends
		// it on its light path.
		fut, err := p.js.PublishMsgAsync(&f.msg)
		if err != nil {
			b.fail(i, err)
			break
		}
		f.fut, f.deadline, f.done, f.err = fut, time.Now().Add(p.ackTimeout), false, nil
		b.busy[key] = i
		sent = i + 1
	}
	for ; head < sent; head++ {
		b.wait(head)
	}
	if b.failed == len(events) {
		p.putSlots(storage)
	}
	if b.failed < len(events) {
		e := events[b.failed]
		return b.failed, fmt.Errorf("publish event %s (%d of %d, instance %s): %w",
			e.ID, b.failed+1, len(events), watcher.Quote(e.InstanceID), b.err)
	}
	return len(events), nil
}

// batch is the state of one Publish call.
type batch struct {
	ring   []inflight     // event i at ring[i%len(ring)] while it may be in flight
	busy   map[uint64]int // by instanceHash, index of each instance's last event sent; resolved if below head
	failed int            // index of the first event known not acked; len(events) if none
	err    error
	timer  *time.Timer // made on the first wait that must block
}

func (b *batch) fail(i int, err error) {
	if i < b.failed {
		b.failed, b.err = i, err
	}
}

func (b *batch) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// wait resolves event i, sent and still in the ring: its ack, its error, or
// its deadline.
func (b *batch) wait(i int) {
	f := &b.ring[i%len(b.ring)]
	if f.done {
		return
	}
	select {
	case ack := <-f.fut.Ok(): // mostly there already: no timer to arm
		if ack == nil {
			f.err = errors.New("empty ack")
		}
	default:
		f.err = b.block(f)
	}
	f.done = true
	if f.err != nil {
		b.fail(i, f.err)
	}
}

// block waits for f's ack, its error, or its deadline.
func (b *batch) block(f *inflight) error {
	if b.timer == nil {
		b.timer = time.NewTimer(time.Until(f.deadline))
	} else {
		b.timer.Reset(time.Until(f.deadline))
	}
	defer b.timer.Stop()
	select {
	case ack := <-f.fut.Ok():
		if ack == nil {
			return errors.New("empty ack")
		}
		return nil
	case err := <-f.fut.Err():
		return err
	case <-b.timer.C:
		return ErrAckTimeout
	}
}

// PublishScan publishes the summary synchronously, with Nats-Msg-Id =
// ScanMsgID(s) so a repeat is dropped, and waits at most AckTimeout for the
// ack. It is best effort: the caller logs the error and goes on.
func (p *JetStream) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	msg, err := encodeScan(p.prefix, s)
	if err != nil {
		return fmt.Errorf("publish scan summary: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.ackTimeout)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ScanMsgID(s))); err != nil {
		return fmt.Errorf("publish scan summary %s: %w", s.Target, err)
	}
	return nil
}
