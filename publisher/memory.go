package publisher

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// ErrInjected is wrapped by the errors a Memory publisher returns because a
// test told it to fail (SetDown, FailAfter, DropAcksAfter).
var ErrInjected = errors.New("injected publish failure")

// Memory is an in-memory watcher.Publisher for tests of the watcher loop. It
// encodes and refuses events exactly like the NATS publishers (it passes the
// same conformance suite), stores each message ID once like a JetStream
// stream (its de-duplication window never ends), and can be told to fail.
// It is safe for concurrent use; the zero value is not usable, use NewMemory.
type Memory struct {
	prefix string

	mu        sync.Mutex
	seen      map[string]bool // message IDs stored
	messages  []Message
	events    []watcher.Event
	scans     []watcher.ScanSummary
	down      bool
	failAfter int // -1: off
	dropAfter int // -1: off
	changed   chan struct{}
}

var _ watcher.Publisher = (*Memory)(nil)

// NewMemory returns an empty, working Memory publisher with DefaultPrefix.
func NewMemory() *Memory {
	return &Memory{
		prefix:    DefaultPrefix,
		seen:      make(map[string]bool),
		failAfter: -1,
		dropAfter: -1,
		changed:   make(chan struct{}),
	}
}

// SetDown makes every Publish and PublishScan fail (acked 0, nothing stored)
// while down is true, as when NATS is unreachable.
func (m *Memory) SetDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// FailAfter makes the next Publish call store and ack only its first n
// events and return an error (unless it has n events or fewer). It applies
// once.
func (m *Memory) FailAfter(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failAfter = max(n, 0)
}

// DropAcksAfter makes the next Publish call store all its events but ack
// only the first n and return an error, as when the connection drops after
// the broker stored the events and before the acks arrived. The caller then
// re-sends stored events, which are dropped as duplicates. It applies once.
func (m *Memory) DropAcksAfter(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropAfter = max(n, 0)
}

// Publish stores the events in order, skipping IDs already stored, and
// returns how many were acked (see watcher.Publisher).
func (m *Memory) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return 0, fmt.Errorf("publish: down: %w", ErrInjected)
	}
	store, ack := len(events), len(events)
	var injected error
	if m.failAfter >= 0 {
		if m.failAfter < len(events) {
			store, ack = m.failAfter, m.failAfter
			injected = fmt.Errorf("publish event %s (%d of %d): %w", events[store].ID, store+1, len(events), ErrInjected)
		}
		m.failAfter = -1
	} else if m.dropAfter >= 0 {
		if m.dropAfter < len(events) {
			ack = m.dropAfter
			injected = fmt.Errorf("publish event %s (%d of %d): ack lost: %w", events[ack].ID, ack+1, len(events), ErrInjected)
		}
		m.dropAfter = -1
	}
	stored := 0
	defer func() {
		if stored > 0 {
			m.notify()
		}
	}()
	for i, e := range events[:store] {
		msg, err := encodeEvent(m.prefix, e)
		if err != nil {
			return min(i, ack), fmt.Errorf("publish event %s (%d of %d): %w", e.ID, i+1, len(events), err)
		}
		if m.seen[e.ID] {
			continue
		}
		m.seen[e.ID] = true
		m.messages = append(m.messages, toMessage(msg))
		m.events = append(m.events, e)
		stored++
	}
	return ack, injected
}

// PublishScan stores the summary unless one with the same ScanMsgID is
// stored already.
func (m *Memory) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish scan summary: %w", err)
	}
	msg, err := encodeScan(m.prefix, s)
	if err != nil {
		return fmt.Errorf("publish scan summary: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return fmt.Errorf("publish scan summary %s: down: %w", s.Target, ErrInjected)
	}
	id := ScanMsgID(s)
	if m.seen[id] {
		return nil
	}
	m.seen[id] = true
	m.messages = append(m.messages, toMessage(msg))
	s.ByState = cloneStates(s.ByState)
	m.scans = append(m.scans, s)
	m.notify()
	return nil
}

// Messages returns a copy of every message stored, events and scan
// summaries, in the order stored.
func (m *Memory) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneMessages(m.messages)
}

// Events returns a copy of the events stored, in the order stored.
func (m *Memory) Events() []watcher.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]watcher.Event(nil), m.events...)
}

// Scans returns a copy of the scan summaries stored, in the order stored.
func (m *Memory) Scans() []watcher.ScanSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]watcher.ScanSummary, len(m.scans))
	for i, s := range m.scans {
		s.ByState = cloneStates(s.ByState)
		out[i] = s
	}
	return out
}

// WaitFor waits until at least n events are stored and returns them all
// (possibly more than n), or returns ctx's error with the events stored so
// far.
func (m *Memory) WaitFor(ctx context.Context, n int) ([]watcher.Event, error) {
	if err := m.wait(ctx, func() bool { return len(m.events) >= n }); err != nil {
		return m.Events(), fmt.Errorf("wait for %d events: %w", n, err)
	}
	return m.Events(), nil
}

// WaitMessages waits until at least n messages (events and scan summaries)
// are stored and returns them all, or returns ctx's error with the messages
// stored so far.
func (m *Memory) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	if err := m.wait(ctx, func() bool { return len(m.messages) >= n }); err != nil {
		return m.Messages(), fmt.Errorf("wait for %d messages: %w", n, err)
	}
	return m.Messages(), nil
}

// wait blocks until done (called with m.mu held) is true or ctx ends.
func (m *Memory) wait(ctx context.Context, done func() bool) error {
	for {
		m.mu.Lock()
		ok, ch := done(), m.changed
		m.mu.Unlock()
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

// notify wakes every waiter; m.mu is held.
func (m *Memory) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func cloneStates(in map[watcher.State]int) map[watcher.State]int {
	if in == nil {
		return nil
	}
	out := make(map[watcher.State]int, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func cloneMessages(in []Message) []Message {
	out := make([]Message, len(in))
	for i, msg := range in {
		out[i] = toMessage(&nats.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
	}
	return out
}
