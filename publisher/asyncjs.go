package publisher

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lightAsync returns js whose PublishMsgAsync without options sends the
// message on the connection with a reply subject of its own and hands the
// stream's ack to the future, with less work per message than the library:
// no timer, no random reply token and map of strings, no reflection to read
// the ack. With options it is the library's. Everything else is js.
//
// What it keeps of the library's contract: each future resolves once, with
// the ack or an error (the stream's refusal as *jetstream.APIError,
// jetstream.ErrNoStreamResponse when no stream answers after two re-sends
// 250 ms apart, as the library does through a stream leader's election,
// nats.ErrDisconnected when the connection is lost); and the limit on
// publishes awaiting an ack: at maxPending a publish waits for one to
// resolve, at most ackTimeout, and then fails with
// jetstream.ErrTooManyStalledMsgs.
//
// What differs: a publish whose ack never comes fails with
// jetstream.ErrAsyncPublishTimeout once ackTimeout has passed, but only when
// it is found, at a later publish or while one waits for room, not by a
// timer of its own. Its caller must keep a deadline of its own, as
// JetStream.Publish does. And the library's bookkeeping
// (PublishAsyncPending, PublishAsyncComplete, its callbacks) sees only the
// publishes with options. ackTimeout <= 0 is DefaultAckTimeout.
func lightAsync(js jetstream.JetStream, ackTimeout time.Duration, maxPending int) jetstream.JetStream {
	if ackTimeout <= 0 {
		ackTimeout = DefaultAckTimeout
	}
	return &asyncJS{JetStream: js, nc: js.Conn(), ackTimeout: ackTimeout, maxPending: max(1, maxPending), now: time.Now}
}

// Re-sends after a "no responders" answer, as the library's defaults.
const (
	noRespondersRetries = 2
	noRespondersWait    = 250 * time.Millisecond
)

type asyncJS struct {
	jetstream.JetStream
	nc         *nats.Conn
	ackTimeout time.Duration
	maxPending int
	now        func() time.Time

	mu     sync.Mutex
	prefix string // of reply subjects: prefix + the publish's number
	sub    *nats.Subscription
	// pending are the futures of publishes base, base+1, ..., in the
	// order sent; resolved ones leave from the front. unresolved counts
	// those not resolved, which maxPending bounds.
	pending    []*asyncFuture
	base       uint64
	unresolved int
	// stall, when not nil, is closed when unresolved falls below maxPending.
	stall chan struct{}
	// stream is the name in the last ack (the handler's alone): acks
	// share it, not a copy each.
	stream string
}

// asyncFuture is one publish's jetstream.PubAckFuture.
type asyncFuture struct {
	a        *asyncJS
	msg      *nats.Msg
	reply    string
	deadline time.Time
	retries  int // re-sends after "no responders"
	done     bool
	ack      *jetstream.PubAck
	err      error
	okCh     chan *jetstream.PubAck
	errCh    chan error
}

func (a *asyncJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if len(opts) > 0 {
		return a.JetStream.PublishMsgAsync(m, opts...)
	}
	if m.Reply != "" {
		return nil, jetstream.ErrAsyncPublishReplySubjectSet
	}
	f := &asyncFuture{a: a, msg: m}

	a.mu.Lock()
	if a.sub == nil {
		if err := a.subscribeLocked(); err != nil {
			a.mu.Unlock()
			return nil, fmt.Errorf("nats: error creating async reply handler: %w", err)
		}
	}
	id, err := a.admitLocked(f)
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}

	if err := a.send(f); err != nil {
		a.mu.Lock()
		a.resolveLocked(id, nil, err)
		a.mu.Unlock()
		return nil, err
	}
	return f, nil
}

// admitLocked waits for room (waitRoomLocked), then numbers f, gives it its
// reply subject and deadline, and returns its number.
func (a *asyncJS) admitLocked(f *asyncFuture) (uint64, error) {
	if err := a.waitRoomLocked(); err != nil {
		return 0, err
	}
	f.deadline = a.now().Add(a.ackTimeout)
	id := a.base + uint64(len(a.pending))
	f.reply = a.prefix + strconv.FormatUint(id, 10)
	a.pending = append(a.pending, f)
	a.unresolved++
	return id, nil
}

// send publishes f's message with its reply subject.
func (a *asyncJS) send(f *asyncFuture) error {
	return a.nc.PublishMsg(&nats.Msg{Subject: f.msg.Subject, Reply: f.reply, Header: f.msg.Header, Data: f.msg.Data})
}

// waitRoomLocked returns once fewer than maxPending publishes are
// unresolved, or fails when none resolves within ackTimeout. It wakes when
// an ack comes and when the oldest publish is overdue, which it expires.
// It is called with a.mu held, and returns with it held.
func (a *asyncJS) waitRoomLocked() error {
	var giveUp time.Time // of the wait, on the wall clock; deadlines are on a.now
	var timer *time.Timer
	for {
		now := a.now()
		a.expireLocked(now)
		if a.unresolved < a.maxPending {
			return nil
		}
		if giveUp.IsZero() {
			giveUp = time.Now().Add(a.ackTimeout)
		}
		wait := time.Until(giveUp)
		if wait <= 0 {
			return jetstream.ErrTooManyStalledMsgs
		}
		if len(a.pending) > 0 {
			wait = min(wait, max(0, a.pending[0].deadline.Sub(now)))
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		if a.stall == nil {
			a.stall = make(chan struct{})
		}
		stall := a.stall
		a.mu.Unlock()
		select {
		case <-stall:
			timer.Stop() // since Go 1.23 no stale tick is left to drain
		case <-timer.C:
		}
		a.mu.Lock()
	}
}

// subscribeLocked subscribes to the replies and watches the connection,
// failing every pending publish when it is lost.
func (a *asyncJS) subscribeLocked() error {
	// Set before the subscription's goroutine starts, which reads it.
	a.prefix = a.nc.NewInbox() + "."
	sub, err := a.nc.Subscribe(a.prefix+"*", a.handleAck)
	if err != nil {
		return err
	}
	a.sub = sub
	status := a.nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	go func() {
		for s := range status {
			a.mu.Lock()
			a.failAllLocked(nats.ErrDisconnected)
			a.mu.Unlock()
			if s == nats.CLOSED {
				return
			}
		}
	}()
	return nil
}

// failAllLocked fails every unresolved publish with err; a reply that
// comes later for one of them is ignored.
func (a *asyncJS) failAllLocked(err error) {
	for i, f := range a.pending {
		if !f.done {
			a.settleLocked(f, nil, err)
		}
		a.pending[i] = nil
	}
	a.base += uint64(len(a.pending))
	a.pending = a.pending[:0]
}

// handleAck resolves the future the reply is for. It runs on the
// subscription's goroutine, one reply at a time.
func (a *asyncJS) handleAck(m *nats.Msg) {
	if len(m.Subject) <= len(a.prefix) {
		return
	}
	id, err := strconv.ParseUint(m.Subject[len(a.prefix):], 10, 64)
	if err != nil {
		return
	}
	ack, ackErr := a.readAck(m)
	a.mu.Lock()
	defer a.mu.Unlock()
	if errors.Is(ackErr, jetstream.ErrNoStreamResponse) {
		if f := a.pendingLocked(id); f != nil && f.retries < noRespondersRetries {
			f.retries++
			time.AfterFunc(noRespondersWait, func() { a.resend(id, f) })
			return
		}
	}
	a.resolveLocked(id, ack, ackErr)
}

// resend publishes f (number id) again after "no responders", unless it
// was resolved meanwhile (expired, or failed by a disconnect).
func (a *asyncJS) resend(id uint64, f *asyncFuture) {
	a.mu.Lock()
	pending := a.pendingLocked(id) == f
	a.mu.Unlock()
	if !pending {
		return
	}
	if err := a.send(f); err != nil {
		a.mu.Lock()
		a.resolveLocked(id, nil, err)
		a.mu.Unlock()
	}
}

// pendingLocked returns the future of publish id, nil unless unresolved.
func (a *asyncJS) pendingLocked(id uint64) *asyncFuture {
	if id < a.base || id-a.base >= uint64(len(a.pending)) {
		return nil
	}
	if f := a.pending[id-a.base]; !f.done {
		return f
	}
	return nil
}

// resolveLocked resolves publish id, if still pending, and lets the
// resolved publishes at the front go.
func (a *asyncJS) resolveLocked(id uint64, ack *jetstream.PubAck, err error) {
	if f := a.pendingLocked(id); f != nil {
		a.settleLocked(f, ack, err)
		a.popLocked()
	} // else resolved already, by a timeout or a disconnect
}

// expireLocked fails the publishes at the front whose ack is overdue, and
// drops them with the resolved ones behind them.
func (a *asyncJS) expireLocked(now time.Time) {
	for len(a.pending) > 0 {
		f := a.pending[0]
		if !f.done && now.Before(f.deadline) {
			break
		}
		if !f.done {
			a.settleLocked(f, nil, jetstream.ErrAsyncPublishTimeout)
		}
		a.popLocked()
	}
}

// popLocked drops the resolved publishes at the front.
func (a *asyncJS) popLocked() {
	k := 0
	for k < len(a.pending) && a.pending[k].done {
		a.pending[k] = nil
		k++
	}
	if k == 0 {
		return
	}
	a.base += uint64(k)
	if k == len(a.pending) {
		a.pending = a.pending[:0] // keeps the array for the next publishes
	} else {
		a.pending = a.pending[k:]
	}
}

// unstallLocked wakes the publishes waiting for room, if there is some.
func (a *asyncJS) unstallLocked() {
	if a.stall != nil && a.unresolved < a.maxPending {
		close(a.stall)
		a.stall = nil
	}
}

func (a *asyncJS) settleLocked(f *asyncFuture, ack *jetstream.PubAck, err error) {
	f.done, f.ack, f.err = true, ack, err
	a.unresolved--
	a.unstallLocked()
	if err == nil && f.okCh != nil {
		f.okCh <- ack
	}
	if err != nil && f.errCh != nil {
		f.errCh <- err
	}
}

// Ok delivers the ack, if the publish succeeds.
func (f *asyncFuture) Ok() <-chan *jetstream.PubAck {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	if f.okCh == nil {
		f.okCh = make(chan *jetstream.PubAck, 1)
		if f.done && f.err == nil {
			f.okCh <- f.ack
		}
	}
	return f.okCh
}

// Err delivers the error, if the publish fails.
func (f *asyncFuture) Err() <-chan error {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	if f.errCh == nil {
		f.errCh = make(chan error, 1)
		if f.done && f.err != nil {
			f.errCh <- f.err
		}
	}
	return f.errCh
}

// Msg returns the message published.
func (f *asyncFuture) Msg() *nats.Msg { return f.msg }
