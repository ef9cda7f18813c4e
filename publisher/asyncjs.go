package publisher

import (
	"bytes"
	"encoding/json"
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
// jetstream.ErrNoStreamResponse when no stream answers,
// nats.ErrDisconnected when the connection is lost, and
// jetstream.ErrAsyncPublishTimeout when no ack came within ackTimeout, found
// at a later publish: the caller keeps a deadline of its own, as
// JetStream.Publish does); and the limit on publishes awaiting an ack: at
// maxPending a publish waits for one to resolve, at most ackTimeout, and
// then fails with jetstream.ErrTooManyStalledMsgs. What it drops: the
// library's re-send after a "no responders" answer (the caller re-sends).
func lightAsync(js jetstream.JetStream, ackTimeout time.Duration, maxPending int) jetstream.JetStream {
	return &asyncJS{JetStream: js, nc: js.Conn(), ackTimeout: ackTimeout, maxPending: max(1, maxPending), now: time.Now}
}

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
	// order sent; resolved ones leave from the front.
	pending []*asyncFuture
	base    uint64
	// stall, when not nil, is closed when pending falls below maxPending.
	stall chan struct{}
	// stream is the name in the last ack (the handler's alone): acks
	// share it, not a copy each.
	stream string
}

// asyncFuture is one publish's jetstream.PubAckFuture.
type asyncFuture struct {
	a        *asyncJS
	msg      *nats.Msg
	deadline time.Time
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
	if err := a.waitRoomLocked(); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	f.deadline = a.now().Add(a.ackTimeout)
	id := a.base + uint64(len(a.pending))
	a.pending = append(a.pending, f)
	prefix := a.prefix
	a.mu.Unlock()

	reply := prefix + strconv.FormatUint(id, 10)
	if err := a.nc.PublishMsg(&nats.Msg{Subject: m.Subject, Reply: reply, Header: m.Header, Data: m.Data}); err != nil {
		a.mu.Lock()
		a.resolveLocked(id, nil, err)
		a.mu.Unlock()
		return nil, err
	}
	return f, nil
}

// waitRoomLocked returns once fewer than maxPending publishes are pending,
// or fails after waiting ackTimeout. It is called with a.mu held, and
// returns with it held.
func (a *asyncJS) waitRoomLocked() error {
	var timer *time.Timer
	waited := false
	for {
		a.expireLocked(a.now())
		if len(a.pending) < a.maxPending {
			break
		}
		if waited {
			return jetstream.ErrTooManyStalledMsgs
		}
		if timer == nil {
			timer = time.NewTimer(a.ackTimeout)
			defer timer.Stop()
		}
		if a.stall == nil {
			a.stall = make(chan struct{})
		}
		stall := a.stall
		a.mu.Unlock()
		select {
		case <-stall:
		case <-timer.C:
			waited = true // once more: expire what is overdue by now
		}
		a.mu.Lock()
	}
	return nil
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
			for i, f := range a.pending {
				if f != nil && !f.done {
					a.settleLocked(f, nil, nats.ErrDisconnected)
				}
				a.pending[i] = nil
			}
			a.base += uint64(len(a.pending))
			a.pending = a.pending[:0]
			a.unstallLocked()
			a.mu.Unlock()
			if s == nats.CLOSED {
				return
			}
		}
	}()
	return nil
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
	a.resolveLocked(id, ack, ackErr)
	a.mu.Unlock()
}

// readAck returns the stream's ack in m, or why it is not one.
func (a *asyncJS) readAck(m *nats.Msg) (*jetstream.PubAck, error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return nil, jetstream.ErrNoStreamResponse
		}
		return nil, jetstream.ErrInvalidJSAck
	}
	if ack, ok := a.readPlainAck(m.Data); ok {
		return ack, nil
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
		jetstream.PubAck
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if resp.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &resp.PubAck, nil
}

// readPlainAck reads the usual ack, {"stream":"S","seq":N} with
// ,"duplicate":true or not, without reflection; ok is false for anything
// else (which json.Unmarshal reads).
func (a *asyncJS) readPlainAck(data []byte) (*jetstream.PubAck, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"stream":"`))
	if !ok {
		return nil, false
	}
	name, rest, ok := bytes.Cut(rest, []byte(`"`))
	if !ok || len(name) == 0 || !plainJSONString(name) {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"seq":`)); !ok {
		return nil, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 1 && rest[0] == '0' {
		return nil, false // JSON has no leading zeros
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return nil, false
	}
	dup := false
	switch tail := rest[n:]; {
	case string(tail) == `}`:
	case string(tail) == `,"duplicate":true}`:
		dup = true
	default:
		return nil, false
	}
	if string(name) != a.stream {
		a.stream = string(name)
	}
	return &jetstream.PubAck{Stream: a.stream, Sequence: seq, Duplicate: dup}, true
}

// plainJSONString reports whether b, between quotes, is a JSON string that
// means itself: printable ASCII, no escape.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

// resolveLocked resolves publish id, if still pending, and lets the
// resolved publishes at the front go.
func (a *asyncJS) resolveLocked(id uint64, ack *jetstream.PubAck, err error) {
	if id < a.base || id-a.base >= uint64(len(a.pending)) {
		return // resolved already, by a timeout or a disconnect
	}
	if f := a.pending[id-a.base]; f != nil && !f.done {
		a.settleLocked(f, ack, err)
	}
	a.popLocked()
}

// expireLocked fails the publishes at the front whose ack is overdue, so
// that a lost ack holds no memory for longer than ackTimeout.
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
		a.pending = a.pending[:0]
	} else {
		a.pending = a.pending[k:]
	}
	a.unstallLocked()
}

// unstallLocked wakes the publishes waiting for room, if there is some.
func (a *asyncJS) unstallLocked() {
	if a.stall != nil && len(a.pending) < a.maxPending {
		close(a.stall)
		a.stall = nil
	}
}

func (a *asyncJS) settleLocked(f *asyncFuture, ack *jetstream.PubAck, err error) {
	f.done, f.ack, f.err = true, ack, err
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
