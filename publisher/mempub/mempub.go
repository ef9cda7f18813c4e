// Package mempub is an in-memory watcher.Publisher for tests of the watcher
// loop, kept apart from the NATS publishers so that those tests link no NATS
// client or server. It encodes and refuses events exactly like the NATS
// publishers (it uses the same package wire and passes the same conformance
// suite, publishertest), stores each message ID once like a JetStream
// stream, and can be told to fail.
package mempub

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/cvmwatch/cvmwatch/publisher/wire"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// ErrInjected is wrapped by the errors a Publisher returns because a test
// told it to fail (SetDown, FailAfter, DropAcksAfter).
var ErrInjected = errors.New("injected publish failure")

// Publisher is an in-memory watcher.Publisher publishing under
// wire.DefaultPrefix. Its de-duplication window never ends: an ID stored
// once is never stored again. It is safe for concurrent use; the zero
// value is not usable, use New.
type Publisher struct {
	prefix string

	mu        sync.Mutex
	seen      map[string]bool // message IDs stored
	messages  []wire.Message
	events    []watcher.Event
	scans     []watcher.ScanSummary
	down      bool
	failAfter int // -1: off
	dropAfter int // -1: off
	changed   chan struct{}
}

var _ watcher.Publisher = (*Publisher)(nil)

// New returns an empty, working Publisher.
func New() *Publisher {
	return &Publisher{
		prefix:    wire.DefaultPrefix,
		seen:      make(map[string]bool),
		failAfter: -1,
		dropAfter: -1,
		changed:   make(chan struct{}),
	}
}

// SetDown makes every Publish and PublishScan fail (acked 0, nothing stored)
// while down is true, as when NATS is unreachable.
func (p *Publisher) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// FailAfter makes the next Publish call store and ack only its first n
// events and return an error (unless it has n events or fewer). It applies
// once.
func (p *Publisher) FailAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failAfter = max(n, 0)
}

// DropAcksAfter makes the next Publish call store all its events but ack
// only the first n and return an error, as when the connection drops after
// the broker stored the events and before the acks arrived. The caller then
// re-sends stored events, which are dropped as duplicates. It applies once.
func (p *Publisher) DropAcksAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAfter = max(n, 0)
}

// Publish stores the events in order, skipping IDs already stored, and
// returns how many were acked (see watcher.Publisher).
func (p *Publisher) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return 0, fmt.Errorf("publish: down: %w", ErrInjected)
	}
	store, ack := len(events), len(events)
	var injected error
	if p.failAfter >= 0 {
		if p.failAfter < len(events) {
			store, ack = p.failAfter, p.failAfter
			injected = fmt.Errorf("publish event %s (%d of %d): %w", events[store].ID, store+1, len(events), ErrInjected)
		}
		p.failAfter = -1
	} else if p.dropAfter >= 0 {
		if p.dropAfter < len(events) {
			ack = p.dropAfter
			injected = fmt.Errorf("publish event %s (%d of %d): ack lost: %w", events[ack].ID, ack+1, len(events), ErrInjected)
		}
		p.dropAfter = -1
	}
	stored := 0
	defer func() {
		if stored > 0 {
			p.notify()
		}
	}()
	for i, e := range events[:store] {
		msg, err := wire.EncodeEvent(p.prefix, e)
		if err != nil {
			return min(i, ack), fmt.Errorf("publish event %s (%d of %d): %w", e.ID, i+1, len(events), err)
		}
		if p.seen[e.ID] {
			continue
		}
		p.seen[e.ID] = true
		p.messages = append(p.messages, msg)
		p.events = append(p.events, e)
		stored++
	}
	return ack, injected
}

// PublishScan stores the summary unless one with the same wire.ScanMsgID is
// stored already.
func (p *Publisher) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish scan summary: %w", err)
	}
	msg, err := wire.EncodeScan(p.prefix, s)
	if err != nil {
		return fmt.Errorf("publish scan summary: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return fmt.Errorf("publish scan summary %s: down: %w", s.Target, ErrInjected)
	}
	id := wire.ScanMsgID(s)
	if p.seen[id] {
		return nil
	}
	p.seen[id] = true
	p.messages = append(p.messages, msg)
	s.ByState = maps.Clone(s.ByState)
	p.scans = append(p.scans, s)
	p.notify()
	return nil
}

// Messages returns a copy of every message stored, events and scan
// summaries, in the order stored.
func (p *Publisher) Messages() []wire.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]wire.Message, len(p.messages))
	for i, m := range p.messages {
		out[i] = m.Clone()
	}
	return out
}

// Events returns a copy of the events stored, in the order stored.
func (p *Publisher) Events() []watcher.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]watcher.Event(nil), p.events...)
}

// Scans returns a copy of the scan summaries stored, in the order stored.
func (p *Publisher) Scans() []watcher.ScanSummary {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]watcher.ScanSummary, len(p.scans))
	for i, s := range p.scans {
		s.ByState = maps.Clone(s.ByState)
		out[i] = s
	}
	return out
}

// WaitFor waits until at least n events are stored and returns them all
// (possibly more than n), or returns ctx's error with the events stored so
// far.
func (p *Publisher) WaitFor(ctx context.Context, n int) ([]watcher.Event, error) {
	if err := p.wait(ctx, func() bool { return len(p.events) >= n }); err != nil {
		return p.Events(), fmt.Errorf("wait for %d events: %w", n, err)
	}
	return p.Events(), nil
}

// WaitMessages waits until at least n messages (events and scan summaries)
// are stored and returns them all, or returns ctx's error with the messages
// stored so far.
func (p *Publisher) WaitMessages(ctx context.Context, n int) ([]wire.Message, error) {
	if err := p.wait(ctx, func() bool { return len(p.messages) >= n }); err != nil {
		return p.Messages(), fmt.Errorf("wait for %d messages: %w", n, err)
	}
	return p.Messages(), nil
}

// wait blocks until done (called with p.mu held) is true or ctx ends.
func (p *Publisher) wait(ctx context.Context, done func() bool) error {
	for {
		p.mu.Lock()
		ok, ch := done(), p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes every waiter; p.mu is held.
func (p *Publisher) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}
