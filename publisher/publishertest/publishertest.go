// Package publishertest is the conformance suite that every
// watcher.Publisher in this project runs: the JetStream and core NATS
// publishers on an embedded server, and the in-memory fake, so that the fake
// used by the watcher loop tests is known to behave like the real ones.
package publishertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// Harness makes the publisher under test.
type Harness struct {
	// New returns a fresh publisher, publishing under Prefix to a fresh
	// destination nobody else writes to, and a Reader of that destination.
	// It registers its own cleanup with t.
	New func(t *testing.T) (watcher.Publisher, Reader)
	// Prefix is the subject prefix the publisher uses; default "cvm".
	Prefix string
	// Dedups says whether re-publishing an event ID leaves one copy
	// (JetStream, Memory) or delivers it again (core NATS).
	Dedups bool
}

// Targets used by the suite.
var (
	prod = watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	dev  = watcher.Target{Account: "dev", Region: "ap-shanghai"}
)

const timeout = 20 * time.Second

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	if h.Prefix == "" {
		h.Prefix = publisher.DefaultPrefix
	}
	s := suite{h: h}
	t.Run("EmptyBatchAcksNothing", s.emptyBatch)
	t.Run("InterleavedInstancesKeepOrder", func(t *testing.T) {
		s.inOrder(t, Events([]watcher.Target{prod, dev}, 3, 600))
	})
	t.Run("ManyInstancesKeepOrder", func(t *testing.T) {
		s.inOrder(t, Events([]watcher.Target{prod, dev}, 700, 3000))
	})
	t.Run("OneInstanceKeepsOrder", func(t *testing.T) {
		s.inOrder(t, Events([]watcher.Target{prod}, 1, 300))
	})
	t.Run("UnsafeTokensAreRefused", s.unsafeTokens)
	t.Run("RepublishedEvents", s.republish)
	t.Run("ResendFromFirstUnacked", s.resend)
	t.Run("ScanSummary", s.scan)
	t.Run("UnsafeScanTargetIsRefused", s.unsafeScan)
	t.Run("CanceledContextPublishesNothing", s.canceled)
	t.Run("ConcurrentTargets", s.concurrent)
}

type suite struct{ h Harness }

func (s suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// sentinel is a valid event of an instance no other test event uses;
// published last, its arrival proves every earlier message has arrived.
func sentinel() watcher.Event {
	return Event(prod, "ins-sentinel", 1, watcher.Absent, watcher.StateRunning, base, time.Time{})
}

func (s suite) emptyBatch(t *testing.T) {
	p, _ := s.h.New(t)
	for _, events := range [][]watcher.Event{nil, {}} {
		acked, err := p.Publish(s.ctx(t), events)
		if acked != 0 || err != nil {
			t.Fatalf("Publish(%d events) = %d, %v; want 0, nil", len(events), acked, err)
		}
	}
}

// inOrder publishes events in one call and checks everything a subscriber
// sees: count, order, subjects, bodies and headers.
func (s suite) inOrder(t *testing.T, events []watcher.Event) {
	ctx := s.ctx(t)
	p, r := s.h.New(t)
	mustPublish(ctx, t, p, events)
	msgs, err := r.Messages(ctx, len(events))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), len(events); got != want {
		t.Fatalf("read %d messages, want %d", got, want)
	}
	s.checkEvents(t, msgs, events)
}

// checkEvents checks that msgs are exactly events, in that order.
func (s suite) checkEvents(t *testing.T, msgs []publisher.Message, events []watcher.Event) {
	t.Helper()
	if len(msgs) != len(events) {
		t.Fatalf("%d messages, want %d", len(msgs), len(events))
	}
	for i, e := range events {
		m := msgs[i]
		want := s.h.Prefix + ".state." + e.Target.Account + "." + e.Target.Region + "." + e.InstanceID + "." + string(e.From) + "." + string(e.To)
		if m.Subject != want {
			t.Fatalf("message %d subject = %q, want %q", i, m.Subject, want)
		}
		body, err := watcher.MarshalCloudEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, body) {
			t.Fatalf("message %d body =\n%s\nwant\n%s", i, m.Data, body)
		}
		if got, want := m.Header.Get(publisher.HeaderContentType), watcher.ContentType; got != want {
			t.Fatalf("message %d Content-Type = %q, want %q", i, got, want)
		}
		if got, want := m.Header.Get(publisher.HeaderMsgID), e.ID; got != want {
			t.Fatalf("message %d Nats-Msg-Id = %q, want %q", i, got, want)
		}
	}
	checkInstanceOrder(t, msgs)
}

// checkInstanceOrder decodes msgs and checks each instance's events have
// contiguous sequences and chained states, as subscribers rely on.
func checkInstanceOrder(t *testing.T, msgs []publisher.Message) {
	t.Helper()
	type last struct {
		seq uint64
		to  watcher.State
	}
	seen := make(map[string]last)
	for i, m := range msgs {
		e, err := watcher.UnmarshalCloudEvent(m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		k := e.Target.String() + "/" + e.InstanceID
		prev := seen[k]
		if prev.seq == 0 {
			prev.to = watcher.Absent
		}
		if e.Sequence != prev.seq+1 || e.From != prev.to {
			t.Fatalf("message %d: instance %s event %d %s->%s follows %d ->%s", i, k, e.Sequence, e.From, e.To, prev.seq, prev.to)
		}
		seen[k] = last{e.Sequence, e.To}
	}
}

func (s suite) unsafeTokens(t *testing.T) {
	ok := func(id string) watcher.Event {
		return Event(prod, id, 1, watcher.Absent, watcher.StateRunning, base, time.Time{})
	}
	tests := []struct {
		name string
		bad  watcher.Event
	}{
		{"InstanceIDWithWildcards", ok("ins-a.b>*")},
		{"InstanceIDWithSpace", ok("ins a")},
		{"EmptyInstanceID", ok("")},
		{"StateWithDot", Event(prod, "ins-b", 1, watcher.Absent, "RUN.NING", base, time.Time{})},
		{"AccountWithDot", Event(watcher.Target{Account: "a.b", Region: "r"}, "ins-b", 1, watcher.Absent, watcher.StateRunning, base, time.Time{})},
		{"RegionWildcard", Event(watcher.Target{Account: "a", Region: ">"}, "ins-b", 1, watcher.Absent, watcher.StateRunning, base, time.Time{})},
		{"EventIDWithNewline", func() watcher.Event { e := ok("ins-b"); e.ID = "x\r\nNats-Msg-Id: y"; return e }()},
		{"EmptyEventID", func() watcher.Event { e := ok("ins-b"); e.ID = ""; return e }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := s.ctx(t)
			p, r := s.h.New(t)
			events := []watcher.Event{ok("ins-first"), ok("ins-second"), tt.bad, ok("ins-after")}
			acked, err := p.Publish(ctx, events)
			if acked != 2 {
				t.Fatalf("Publish acked %d, want 2 (up to the unsafe event); err %v", acked, err)
			}
			if !errors.Is(err, watcher.ErrInvalidToken) {
				t.Fatalf("Publish error = %v, want one wrapping watcher.ErrInvalidToken", err)
			}
			mustPublish(ctx, t, p, []watcher.Event{sentinel()})
			msgs, err := r.Messages(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			s.checkEvents(t, msgs, []watcher.Event{events[0], events[1], sentinel()})
		})
	}
}

func (s suite) republish(t *testing.T) {
	ctx := s.ctx(t)
	p, r := s.h.New(t)
	events := Events([]watcher.Target{prod, dev}, 4, 100)
	mustPublish(ctx, t, p, events)
	mustPublish(ctx, t, p, events) // same IDs: acked again
	mustPublish(ctx, t, p, []watcher.Event{sentinel()})
	want := append(append([]watcher.Event(nil), events...), sentinel())
	if !s.h.Dedups {
		want = append(append(append([]watcher.Event(nil), events...), events...), sentinel())
		msgs, err := r.Messages(ctx, len(want))
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != len(want) {
			t.Fatalf("%d messages, want %d (no de-duplication: every copy delivered)", len(msgs), len(want))
		}
		return
	}
	msgs, err := r.Messages(ctx, len(want))
	if err != nil {
		t.Fatal(err)
	}
	s.checkEvents(t, msgs, want)
}

// resend is what the relay does after a partial ack: re-send from the first
// unacknowledged event, overlapping events already stored.
func (s suite) resend(t *testing.T) {
	if !s.h.Dedups {
		t.Skip("no de-duplication: an overlapping re-send delivers copies")
	}
	ctx := s.ctx(t)
	p, r := s.h.New(t)
	events := Events([]watcher.Target{prod, dev}, 5, 200)
	mustPublish(ctx, t, p, events[:120])
	mustPublish(ctx, t, p, events[90:])
	msgs, err := r.Messages(ctx, len(events))
	if err != nil {
		t.Fatal(err)
	}
	s.checkEvents(t, msgs, events)
}

func (s suite) scan(t *testing.T) {
	ctx := s.ctx(t)
	p, r := s.h.New(t)
	sum := watcher.ScanSummary{
		Target:             prod,
		Started:            time.Date(2026, 11, 26, 23, 10, 0, 123456789, time.FixedZone("CST", 8*3600)),
		Duration:           1234567 * time.Microsecond,
		Complete:           true,
		Instances:          250,
		ByState:            map[watcher.State]int{watcher.StateRunning: 240, watcher.StateStopped: 10},
		Events:             2,
		HeldDisappearances: 1,
		Stats:              watcher.ScanStats{Pages: 3, PagesFailed: 0, Requests: 5, Retries: 2, Throttles: 1, Rejected: 4},
	}
	if err := p.PublishScan(ctx, sum); err != nil {
		t.Fatalf("PublishScan: %v", err)
	}
	mustPublish(ctx, t, p, []watcher.Event{sentinel()})
	msgs, err := r.Messages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	m := msgs[0]
	if got, want := m.Subject, s.h.Prefix+".scan.prod.ap-guangzhou"; got != want {
		t.Fatalf("scan subject = %q, want %q", got, want)
	}
	if got, want := m.Header.Get(publisher.HeaderContentType), publisher.ScanContentType; got != want {
		t.Fatalf("scan Content-Type = %q, want %q", got, want)
	}
	if got, want := m.Header.Get(publisher.HeaderMsgID), "scan/prod/ap-guangzhou/2026-11-26T15:10:00.123456789Z"; got != want {
		t.Fatalf("scan Nats-Msg-Id = %q, want %q", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatalf("scan body %s: %v", m.Data, err)
	}
	want := map[string]any{
		"account": "prod", "region": "ap-guangzhou", "started": "2026-11-26T15:10:00.123Z",
		"durationMs": 1234.0, "complete": true, "instances": 250.0,
		"byState": map[string]any{"RUNNING": 240.0, "STOPPED": 10.0},
		"events":  2.0, "heldDisappearances": 1.0, "pages": 3.0, "pagesFailed": 0.0,
		"requests": 5.0, "retries": 2.0, "throttles": 1.0, "rejected": 4.0,
	}
	if got, want := fmt.Sprint(body), fmt.Sprint(want); got != want {
		t.Fatalf("scan body =\n%s\nwant\n%s", got, want)
	}

	if s.h.Dedups {
		// The same summary again is a duplicate.
		if err := p.PublishScan(ctx, sum); err != nil {
			t.Fatalf("PublishScan again: %v", err)
		}
		next := Event(prod, "ins-sentinel", 2, watcher.StateRunning, watcher.StateStopped, base, base)
		mustPublish(ctx, t, p, []watcher.Event{next})
		msgs, err := r.Messages(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 3 || msgs[2].Header.Get(publisher.HeaderMsgID) != next.ID {
			t.Fatalf("after re-publishing the summary: %d messages, want 3 ending with the second sentinel", len(msgs))
		}
	}
}

func (s suite) unsafeScan(t *testing.T) {
	ctx := s.ctx(t)
	p, r := s.h.New(t)
	for _, tg := range []watcher.Target{{Account: "a.b", Region: "r"}, {Account: "a", Region: "*"}, {Account: "", Region: "r"}} {
		err := p.PublishScan(ctx, watcher.ScanSummary{Target: tg, Started: base, Complete: true})
		if !errors.Is(err, watcher.ErrInvalidToken) {
			t.Fatalf("PublishScan(%q) error = %v, want one wrapping watcher.ErrInvalidToken", tg, err)
		}
	}
	mustPublish(ctx, t, p, []watcher.Event{sentinel()})
	msgs, err := r.Messages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.checkEvents(t, msgs, []watcher.Event{sentinel()})
}

func (s suite) canceled(t *testing.T) {
	p, r := s.h.New(t)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	acked, err := p.Publish(canceled, Events([]watcher.Target{prod}, 3, 10))
	if acked != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish(canceled) = %d, %v; want 0 and context.Canceled", acked, err)
	}
	ctx := s.ctx(t)
	mustPublish(ctx, t, p, []watcher.Event{sentinel()})
	msgs, err := r.Messages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.checkEvents(t, msgs, []watcher.Event{sentinel()})
}

// concurrent publishes the events of several targets from several
// goroutines at once, as relays of different targets do.
func (s suite) concurrent(t *testing.T) {
	ctx := s.ctx(t)
	p, r := s.h.New(t)
	const workers, perWorker = 4, 400
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		tg := watcher.Target{Account: fmt.Sprintf("acct%d", w), Region: "ap-guangzhou"}
		events := Events([]watcher.Target{tg}, 7, perWorker)
		wg.Go(func() {
			for i := 0; i < len(events); i += 50 {
				batch := events[i:min(i+50, len(events))]
				if acked, err := p.Publish(ctx, batch); acked != len(batch) || err != nil {
					errs <- fmt.Errorf("%s: Publish = %d, %v; want %d, nil", tg, acked, err, len(batch))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs, err := r.Messages(ctx, workers*perWorker)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), workers*perWorker; got != want {
		t.Fatalf("%d messages, want %d", got, want)
	}
	for i, m := range msgs {
		if !strings.HasPrefix(m.Subject, s.h.Prefix+".state.acct") {
			t.Fatalf("message %d subject %q", i, m.Subject)
		}
	}
	checkInstanceOrder(t, msgs)
}

// mustPublish publishes events and fails the test unless all are acked.
func mustPublish(ctx context.Context, t *testing.T, p watcher.Publisher, events []watcher.Event) {
	t.Helper()
	acked, err := p.Publish(ctx, events)
	if acked != len(events) || err != nil {
		t.Fatalf("Publish(%d events) = %d, %v; want %d, nil", len(events), acked, err, len(events))
	}
}
