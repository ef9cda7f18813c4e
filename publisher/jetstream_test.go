package publisher_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

var (
	prod = watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	dev  = watcher.Target{Account: "dev", Region: "ap-shanghai"}
)

// jsEnv is an embedded server, a connection, a JetStream context and the
// default stream.
type jsEnv struct {
	srv *publisher.Embedded
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newJSEnv(t *testing.T, ackTimeout time.Duration) jsEnv {
	t.Helper()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, ackTimeout)
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return jsEnv{e, nc, js}
}

// trackingJS wraps a JetStream context and checks, at every async publish,
// that no other event of the same instance is unresolved and how many are.
// It can also fail, never resolve, or hold back (until gate is closed) the
// publish of chosen event IDs.
type trackingJS struct {
	jetstream.JetStream

	mu          sync.Mutex
	busy        map[string]bool
	inflight    int
	maxInflight int
	violations  []string
	sent        int
	hungSent    int
	hungMsgs    []*nats.Msg      // the messages of hung futures, as the library holds them
	failIDs     map[string]error // the future of that ID fails with it
	hangIDs     map[string]bool  // the future of that ID never resolves
	gateIDs     map[string]bool  // the future of that ID resolves only once gate is closed
	gate        chan struct{}
	gatedSent   chan struct{} // closed when the first event of gateIDs is sent
	anyGated    bool
}

func newTrackingJS(js jetstream.JetStream) *trackingJS {
	return &trackingJS{
		JetStream: js, busy: make(map[string]bool), failIDs: make(map[string]error), hangIDs: make(map[string]bool),
		gateIDs: make(map[string]bool), gate: make(chan struct{}), gatedSent: make(chan struct{}),
	}
}

// instanceOf returns "<account>.<region>.<id>" of "<prefix>.state.<account>.<region>.<id>.<FROM>.<TO>".
func instanceOf(subject string) string {
	tok := strings.Split(subject, ".")
	return strings.Join(tok[2:5], ".")
}

func (t *trackingJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	key := instanceOf(m.Subject)
	t.mu.Lock()
	if t.busy[key] {
		t.violations = append(t.violations, m.Subject)
	}
	t.busy[key] = true
	t.inflight++
	t.maxInflight = max(t.maxInflight, t.inflight)
	t.sent++
	id := m.Header.Get(publisher.HeaderMsgID)
	failErr, hang, gated := t.failIDs[id], t.hangIDs[id], t.gateIDs[id]
	if hang {
		t.hungSent++
		t.hungMsgs = append(t.hungMsgs, m)
	}
	if gated && !t.anyGated {
		t.anyGated = true
		close(t.gatedSent)
	}
	t.mu.Unlock()

	f, err := t.JetStream.PublishMsgAsync(m, opts...)
	if err != nil {
		t.done(key)
		return nil, err
	}
	w := &future{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1), msg: m}
	go func() {
		var ack *jetstream.PubAck
		var perr error
		select {
		case ack = <-f.Ok():
		case perr = <-f.Err():
		}
		if hang {
			return // still "in flight" for the checker, as the publisher sees it
		}
		if gated {
			<-t.gate // in flight, as the publisher sees it, until the test opens the gate
		}
		t.done(key) // before the publisher can see the result
		switch {
		case failErr != nil:
			w.err <- failErr
		case perr != nil:
			w.err <- perr
		default:
			w.ok <- ack
		}
	}()
	return w, nil
}

func (t *trackingJS) done(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.busy, key)
	t.inflight--
}

type future struct {
	ok  chan *jetstream.PubAck
	err chan error
	msg *nats.Msg
}

func (f *future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *future) Err() <-chan error            { return f.err }
func (f *future) Msg() *nats.Msg               { return f.msg }

func TestJetStreamWindowAndInstanceRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		instances int
		// minInflight is what the window should reach for this data: the
		// rule must not serialize events of different instances.
		minInflight int
	}{
		{"ThreeInstances", 3, 3},
		{"ManyInstances", 500, 16},
		{"OneInstance", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newJSEnv(t, 5*time.Second)
			tr := newTrackingJS(env.js)
			p, err := publisher.NewJetStream(tr, publisher.JetStreamConfig{Window: 16})
			if err != nil {
				t.Fatal(err)
			}
			events := publishertest.Events([]watcher.Target{prod, dev}, tt.instances, 1500)
			if acked, err := p.Publish(t.Context(), events); acked != len(events) || err != nil {
				t.Fatalf("Publish = %d, %v; want %d, nil", acked, err, len(events))
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if len(tr.violations) > 0 {
				t.Fatalf("%d events sent while an earlier event of their instance was in flight, first %s", len(tr.violations), tr.violations[0])
			}
			if tr.maxInflight > 16 {
				t.Fatalf("%d events in flight, window is 16", tr.maxInflight)
			}
			if tr.maxInflight < tt.minInflight {
				t.Fatalf("at most %d events in flight, want at least %d", tr.maxInflight, tt.minInflight)
			}
			if tr.inflight != 0 {
				t.Fatalf("%d events still in flight after Publish returned", tr.inflight)
			}
		})
	}
}

func TestJetStreamFailureAcksPrefix(t *testing.T) {
	t.Parallel()
	injected := errors.New("injected")
	events := publishertest.Events([]watcher.Target{prod, dev}, 50, 400)

	t.Run("ErrorStopsAtFirstFailure", func(t *testing.T) {
		t.Parallel()
		env := newJSEnv(t, 5*time.Second)
		tr := newTrackingJS(env.js)
		tr.failIDs[events[137].ID] = injected
		tr.failIDs[events[150].ID] = injected // a later failure does not matter
		p := MustNewJetStream(t, tr, publisher.JetStreamConfig{Window: 32})
		acked, err := p.Publish(t.Context(), events)
		if acked != 137 || !errors.Is(err, injected) {
			t.Fatalf("Publish = %d, %v; want 137 and the injected error", acked, err)
		}
		if !strings.Contains(err.Error(), events[137].ID) {
			t.Fatalf("error %q does not name event %s", err, events[137].ID)
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.sent > 137+32+1 {
			t.Fatalf("%d events sent; sending should stop within a window of the failure", tr.sent)
		}
		if tr.inflight != 0 {
			t.Fatalf("%d events still in flight after Publish returned", tr.inflight)
		}
	})

	t.Run("NoAckTimesOut", func(t *testing.T) {
		t.Parallel()
		env := newJSEnv(t, 5*time.Second)
		tr := newTrackingJS(env.js)
		tr.hangIDs[events[42].ID] = true
		p := MustNewJetStream(t, tr, publisher.JetStreamConfig{Window: 32, AckTimeout: 300 * time.Millisecond})
		start := time.Now()
		acked, err := p.Publish(t.Context(), events)
		if acked != 42 || !errors.Is(err, publisher.ErrAckTimeout) {
			t.Fatalf("Publish = %d, %v; want 42 and ErrAckTimeout", acked, err)
		}
		// 4 s: far above the configured 300 ms for a loaded machine, below
		// the 5 s default, so a Publish ignoring its AckTimeout still fails.
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("Publish took %s with a 300ms ack timeout", d)
		}
	})

	t.Run("NoStreamForSubject", func(t *testing.T) {
		t.Parallel()
		env := newJSEnv(t, 5*time.Second)
		p := MustNewJetStream(t, env.js, publisher.JetStreamConfig{Prefix: "nostream"})
		acked, err := p.Publish(t.Context(), events[:10])
		if acked != 0 || err == nil {
			t.Fatalf("Publish to subjects no stream captures = %d, %v; want 0 and an error", acked, err)
		}
	})

	t.Run("CanceledMidwayWaitsForInflight", func(t *testing.T) {
		t.Parallel()
		env := newJSEnv(t, 5*time.Second)
		tr := newTrackingJS(env.js)
		// Events 10 and on are acked by the server but held back from the
		// publisher until the gate opens, well after the cancel: the events
		// in flight at the cancel can only have been awaited.
		for _, e := range events[10:] {
			tr.gateIDs[e.ID] = true
		}
		const window = 8
		p := MustNewJetStream(t, tr, publisher.JetStreamConfig{Window: window, AckTimeout: 30 * time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var opened atomic.Bool
		go func() {
			select {
			case <-tr.gatedSent: // event 10 is sent: cancel midway
			case <-t.Context().Done():
				return
			}
			cancel()
			time.Sleep(200 * time.Millisecond)
			opened.Store(true)
			close(tr.gate)
		}()
		start := time.Now()
		acked, err := p.Publish(ctx, events)
		took := time.Since(start)
		t.Logf("Publish = %d, %v after %s", acked, err, took)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish = %d, %v; want an error wrapping context.Canceled (the cancel stopped it)", acked, err)
		}
		if errors.Is(err, publisher.ErrAckTimeout) {
			t.Fatalf("Publish = %d, %v; an ack timed out, so the cancel is not what stopped it", acked, err)
		}
		// Sending stops at the first event after the cancel: event 10 and at
		// most a window more were sent, and every event sent was acked.
		if acked <= 10 || acked > 10+window+1 {
			t.Fatalf("Publish = %d, %v; want more than 10 (event 10 was sent before the cancel) and at most %d", acked, err, 10+window+1)
		}
		if !opened.Load() {
			t.Fatalf("Publish returned after %s, before the events in flight were resolved", took)
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.sent != acked {
			t.Fatalf("%d events sent, %d acked; want nothing sent after the cancel beyond what was acked", tr.sent, acked)
		}
		if tr.inflight != 0 {
			t.Fatalf("%d events in flight after Publish returned, want none", tr.inflight)
		}
	})
}

func TestJetStreamReusesAWindowOnlyWhenEveryEventWasAcked(t *testing.T) {
	t.Parallel()
	env := newJSEnv(t, 5*time.Second)
	tr := newTrackingJS(env.js)
	events := publishertest.Events([]watcher.Target{prod, dev}, 40, 200)
	tr.hangIDs[events[5].ID] = true
	p := MustNewJetStream(t, tr, publisher.JetStreamConfig{Window: 8, AckTimeout: 300 * time.Millisecond})
	ctx := t.Context()

	// Every event acknowledged: the next call may reuse this window.
	if acked, err := p.Publish(ctx, events[100:140]); acked != 40 || err != nil {
		t.Fatalf("first Publish = %d, %v; want 40", acked, err)
	}
	// Event 5 is never resolved: the library may still hold its message,
	// so this window must never be reused.
	if acked, err := p.Publish(ctx, events[:20]); acked != 5 || !errors.Is(err, publisher.ErrAckTimeout) {
		t.Fatalf("second Publish = %d, %v; want 5 and ErrAckTimeout", acked, err)
	}
	tr.mu.Lock()
	hung := tr.hungMsgs[0]
	tr.mu.Unlock()
	subject, data := hung.Subject, bytes.Clone(hung.Data)
	for range 3 {
		if acked, err := p.Publish(ctx, events[20:100]); acked != 80 || err != nil {
			t.Fatalf("later Publish = %d, %v; want 80", acked, err)
		}
	}
	if hung.Subject != subject || !bytes.Equal(hung.Data, data) || hung.Header.Get(publisher.HeaderMsgID) != events[5].ID {
		t.Fatalf("the message of an unresolved publish was overwritten by a later call: %s %s", hung.Subject, hung.Data)
	}

	byID := make(map[string]watcher.Event, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	msgs, err := publisher.ReadAll(ctx, env.js, publisher.DefaultStreamName, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 125 {
		t.Fatalf("stream holds %d messages, want at least the 125 acknowledged", len(msgs))
	}
	for _, m := range msgs {
		e, ok := byID[m.MsgID]
		if !ok {
			t.Fatalf("stored message with unknown id %q", m.MsgID)
		}
		subject, err := e.Subject(publisher.DefaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		body, err := watcher.MarshalCloudEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != subject || !bytes.Equal(m.Data, body) {
			t.Fatalf("message %s is not its event's:\n%s %s\nwant\n%s %s", m.MsgID, m.Subject, m.Data, subject, body)
		}
	}
}

func TestJetStreamPublishScanDedups(t *testing.T) {
	t.Parallel()
	env := newJSEnv(t, 5*time.Second)
	p := MustNewJetStream(t, env.js, publisher.JetStreamConfig{})
	s := watcher.ScanSummary{Target: prod, Started: time.Now(), Complete: true}
	for range 3 {
		if err := p.PublishScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	s.Started = s.Started.Add(time.Nanosecond)
	if err := p.PublishScan(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	str, err := env.js.Stream(t.Context(), publisher.ScanStreamName(""))
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Msgs, uint64(2); got != want {
		t.Fatalf("scans stream holds %d summaries, want %d", got, want)
	}
}

func TestNewJetStreamRejectsUnsafePrefix(t *testing.T) {
	env := newJSEnv(t, time.Second)
	for _, prefix := range []string{"cvm.>", "a..b", "c v m"} {
		if _, err := publisher.NewJetStream(env.js, publisher.JetStreamConfig{Prefix: prefix}); !errors.Is(err, watcher.ErrInvalidToken) {
			t.Errorf("NewJetStream(prefix %q) error = %v, want ErrInvalidToken", prefix, err)
		}
	}
}
