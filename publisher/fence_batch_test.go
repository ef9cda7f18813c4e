package publisher_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

var (
	fbProd = watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	fbDev  = watcher.Target{Account: "dev", Region: "ap-shanghai"}
)

// TestFencedBatch runs the fenced batch publisher's cases on an embedded
// server (R1) and on a 3-node cluster (R3, where fenced publishes in
// flight together are refused, 10164).
func TestFencedBatch(t *testing.T) {
	t.Run("Embedded", func(t *testing.T) {
		e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
		fencedBatchCases(t, MustJetStream(t, MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}}), 5*time.Second), 1)
	})
	t.Run("Cluster", func(t *testing.T) {
		c := natstest.StartCluster(t, 3)
		js := MustJetStream(t, MustConnect(t, publisher.ConnConfig{URLs: strings.Split(c.URLs(), ",")}), 5*time.Second)
		fencedBatchCases(t, js, 3)
	})
}

func fencedBatchCases(t *testing.T, js jetstream.JetStream, replicas int) {
	t.Run("FencedOutBatchStoresNothing", func(t *testing.T) { fencedOutBatch(t, js, replicas) })
	t.Run("AckedPrefix", func(t *testing.T) { batchAckedPrefix(t, js, replicas) })
	t.Run("DuplicateReplay", func(t *testing.T) { batchDuplicateReplay(t, js, replicas) })
}

// fbStream sets up an HA event stream (epochs, atomic publish) and returns
// a function counting its messages on filter.
func fbStream(t *testing.T, js jetstream.JetStream, name, prefix string, replicas int) func(filter string) uint64 {
	t.Helper()
	st, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{Name: name, Prefix: prefix, Epochs: true, Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.AllowAtomicPublish {
		t.Fatalf("HA stream %s does not allow atomic publish", name)
	}
	return func(filter string) uint64 {
		t.Helper()
		info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return n
	}
}

func claim(t *testing.T, js jetstream.JetStream, prefix string, tg watcher.Target, replica string, token uint64) uint64 {
	t.Helper()
	seq, err := publisher.ClaimEpoch(t.Context(), js, publisher.EpochSubject(prefix, tg.Account, tg.Region), replica, token)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func mustFencedBatch(t *testing.T, js jetstream.JetStream, fence publisher.Fence, cfg publisher.FencedBatchConfig) *publisher.FencedBatch {
	t.Helper()
	p, err := publisher.NewFencedBatch(js, fence, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// epochFence fences every message of prefix on its target's epoch in
// epochs; a target without one is refused.
func epochFence(prefix string, epochs map[watcher.Target]uint64) publisher.Fence {
	return func(subject string) (string, uint64, bool) {
		tokens := strings.SplitN(strings.TrimPrefix(subject, prefix+"."), ".", 4)
		if len(tokens) < 3 {
			return "", 0, false
		}
		tg := watcher.Target{Account: tokens[1], Region: tokens[2]}
		seq, ok := epochs[tg]
		return publisher.EpochSubject(prefix, tg.Account, tg.Region), seq, ok
	}
}

func wrongLastSequence(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// A replica whose epoch another claimed has its whole batch refused:
// nothing of it is stored; the new owner's batches store.
func fencedOutBatch(t *testing.T, js jetstream.JetStream, replicas int) {
	count := fbStream(t, js, "FENCE", "f", replicas)
	events := publishertest.Events([]watcher.Target{fbProd}, 50, 400)
	old := mustFencedBatch(t, js, epochFence("f", map[watcher.Target]uint64{fbProd: claim(t, js, "f", fbProd, "a", 1)}),
		publisher.FencedBatchConfig{Prefix: "f", Atomic: true, MaxBatch: 150})
	if n, err := old.Publish(t.Context(), events[:200]); n != 200 || err != nil {
		t.Fatalf("owner's publish = %d, %v; want 200", n, err)
	}
	next := mustFencedBatch(t, js, epochFence("f", map[watcher.Target]uint64{fbProd: claim(t, js, "f", fbProd, "b", 2)}),
		publisher.FencedBatchConfig{Prefix: "f", Atomic: true})
	n, err := old.Publish(t.Context(), events[200:])
	if n != 0 || !wrongLastSequence(err) {
		t.Fatalf("fenced-out publish = %d, %v; want 0 and wrong last sequence", n, err)
	}
	if got, want := count("f.state.>"), uint64(200); got != want {
		t.Fatalf("stream holds %d events after the fenced-out batch, want %d (nothing of it)", got, want)
	}
	if n, err := next.Publish(t.Context(), events[200:]); n != 200 || err != nil {
		t.Fatalf("new owner's publish = %d, %v; want 200", n, err)
	}
	if got, want := count("f.state.>"), uint64(400); got != want {
		t.Fatalf("stream holds %d events, want %d", got, want)
	}
}

// Publish counts an event only once its batch committed and every earlier
// event counts: runs end at MaxBatch and at a change of epoch, and what
// follows a refused run is not sent.
func batchAckedPrefix(t *testing.T, js jetstream.JetStream, replicas int) {
	count := fbStream(t, js, "PREFIX", "p", replicas)
	epochs := map[watcher.Target]uint64{fbProd: claim(t, js, "p", fbProd, "a", 1), fbDev: claim(t, js, "p", fbDev, "a", 1)}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ev := func(tg watcher.Target, id string) watcher.Event {
		return publishertest.Event(tg, id, 1, watcher.Absent, watcher.StateRunning, at, time.Time{})
	}

	// One target, batches of 4; the 7th instance's fence is stale.
	fence := epochFence("p", epochs)
	stale := func(subject string) (string, uint64, bool) {
		subj, seq, ok := fence(subject)
		if strings.Contains(subject, ".i6.") {
			seq++
		}
		return subj, seq, ok
	}
	p := mustFencedBatch(t, js, stale, publisher.FencedBatchConfig{Prefix: "p", Atomic: true, MaxBatch: 4})
	var events []watcher.Event
	for _, id := range []string{"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8", "i9"} {
		events = append(events, ev(fbProd, id))
	}
	if n, err := p.Publish(t.Context(), events); n != 6 || !wrongLastSequence(err) {
		t.Fatalf("publish with a stale 7th = %d, %v; want 6 and wrong last sequence", n, err)
	}
	if got, want := count("p.state.>"), uint64(6); got != want {
		t.Fatalf("stream holds %d events, want %d", got, want)
	}

	// Mixed targets: a target without an epoch ends the prefix.
	other := watcher.Target{Account: "other", Region: "ap-beijing"}
	p = mustFencedBatch(t, js, fence, publisher.FencedBatchConfig{Prefix: "p", Atomic: true})
	events = []watcher.Event{ev(fbDev, "d0"), ev(fbDev, "d1"), ev(fbProd, "p0"), ev(other, "x0"), ev(fbDev, "d2")}
	if n, err := p.Publish(t.Context(), events); n != 3 || !errors.Is(err, publisher.ErrNoEpoch) {
		t.Fatalf("publish with an unheld target = %d, %v; want 3 and ErrNoEpoch", n, err)
	}
	if got, want := count("p.state.>"), uint64(9); got != want {
		t.Fatalf("stream holds %d events, want %d", got, want)
	}

	// Mixed targets: a target fenced out in the middle.
	claim(t, js, "p", fbProd, "b", 2)
	events = []watcher.Event{ev(fbDev, "e0"), ev(fbDev, "e1"), ev(fbProd, "q0"), ev(fbProd, "q1"), ev(fbDev, "e2")}
	if n, err := p.Publish(t.Context(), events); n != 2 || !wrongLastSequence(err) {
		t.Fatalf("publish with a fenced-out target = %d, %v; want 2 and wrong last sequence", n, err)
	}
	if got, want := count("p.state.>"), uint64(11); got != want {
		t.Fatalf("stream holds %d events, want %d", got, want)
	}
	if got := count("p.state.*.*.q0.>") + count("p.state.*.*.e2.>"); got != 0 {
		t.Fatalf("stream holds %d events of the fenced-out run or after it, want 0", got)
	}
}

// A replay of events already stored (a relay re-sending its outbox head
// after a crash) is acknowledged without a second copy and does not block
// the relay: a batch refused for a duplicate goes one event at a time
// until one is new, then in batches again.
func batchDuplicateReplay(t *testing.T, js jetstream.JetStream, replicas int) {
	count := fbStream(t, js, "DUP", "d", replicas)
	fence := epochFence("d", map[watcher.Target]uint64{fbProd: claim(t, js, "d", fbProd, "a", 1)})
	p := mustFencedBatch(t, js, fence, publisher.FencedBatchConfig{Prefix: "d", Atomic: true})
	events := publishertest.Events([]watcher.Target{fbProd}, 100, 100) // one each
	publish := func(from, to int) {
		t.Helper()
		if n, err := p.Publish(t.Context(), events[from:to]); n != to-from || err != nil {
			t.Fatalf("publish events %d..%d = %d, %v; want %d", from, to, n, err, to-from)
		}
	}
	publish(0, 10)
	publish(5, 20)  // overlapping head
	publish(0, 20)  // all stored already
	publish(60, 62) // then a replay with duplicates in its middle
	publish(20, 100)
	if got, want := count("d.state.>"), uint64(100); got != want {
		t.Fatalf("stream holds %d events, want %d (each once)", got, want)
	}

	// The events after the replayed head were stored as a batch again.
	st, err := js.Stream(t.Context(), "DUP")
	if err != nil {
		t.Fatal(err)
	}
	batched := func(e watcher.Event) bool {
		t.Helper()
		m, err := st.GetLastMsgForSubject(t.Context(), "d.state.prod.ap-guangzhou."+e.InstanceID+".>")
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != e.ID {
			t.Fatalf("stored id %q, want %q", got, e.ID)
		}
		return m.Header.Get("Nats-Batch-Id") != ""
	}
	if batched(events[10]) || !batched(events[11]) || !batched(events[19]) {
		t.Fatalf("batched: first new event %v, the rest %v %v; want false (published alone), true, true",
			batched(events[10]), batched(events[11]), batched(events[19]))
	}
}

// A stream of cvmwatch's gains atomic publish with Epochs; an operator's
// is left without it, and the publisher then publishes one fenced event at
// a time, whether told so or finding out from the stream's refusal.
func TestFencedBatchWithoutAtomicPublish(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	js := MustJetStream(t, MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}}), 5*time.Second)
	ctx := t.Context()
	allows := func(name string) bool {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.AllowAtomicPublish
	}

	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "OURS", Prefix: "u"}); err != nil {
		t.Fatal(err)
	}
	if allows("OURS") {
		t.Fatal("single-process stream allows atomic publish")
	}
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "OURS", Prefix: "u", Epochs: true}); err != nil {
		t.Fatal(err)
	}
	if !allows("OURS") {
		t.Fatal("stream of cvmwatch's did not gain atomic publish with Epochs")
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPS", Subjects: []string{"o.state.>", "o.epoch.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "OPS", Prefix: "o", Epochs: true, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	if allows("OPS") {
		t.Fatal("an operator's stream was given atomic publish")
	}
	fence := epochFence("o", map[watcher.Target]uint64{fbProd: claim(t, js, "o", fbProd, "a", 1)})
	events := publishertest.Events([]watcher.Target{fbProd}, 10, 20)
	for i, atomic := range []bool{false, true} {
		p := mustFencedBatch(t, js, fence, publisher.FencedBatchConfig{Prefix: "o", Atomic: atomic, Logger: testLogger(t)})
		for range 2 { // told, or found out then remembered
			if n, err := p.Publish(ctx, events[i*10:i*10+10]); n != 10 || err != nil {
				t.Fatalf("publish with Atomic %v = %d, %v; want 10", atomic, n, err)
			}
		}
	}
	s, err := js.Stream(ctx, "OPS")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.CachedInfo().State.Msgs, uint64(21); got != want { // the epoch, 20 events
		t.Fatalf("stream holds %d messages, want %d", got, want)
	}
}

// The fenced batch publisher passes the conformance suite: each target
// the suite uses is claimed on first use.
func TestFencedBatchConformance(t *testing.T) {
	t.Parallel()
	publishertest.Run(t, publishertest.Harness{
		Prefix: "cvmtest",
		Dedups: true,
		New: func(t *testing.T) (watcher.Publisher, publishertest.Reader) {
			e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
			js := MustJetStream(t, MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}}), 5*time.Second)
			sc := publisher.StreamConfig{Prefix: "cvmtest", Epochs: true}
			if _, err := publisher.EnsureStream(t.Context(), js, sc); err != nil {
				t.Fatal(err)
			}
			c := &claimer{t: t, js: js, prefix: "cvmtest", epochs: map[watcher.Target]uint64{}}
			p := mustFencedBatch(t, js, c.fence, publisher.FencedBatchConfig{Prefix: "cvmtest", Atomic: true, MaxBatch: 64})
			r := publishertest.NewStreamsReader(js, publisher.DefaultStreamName, publisher.ScanStreamName(""))
			return publisher.NewStreamReadyFor(js, sc, p), c.reader(r)
		},
	})
}

// claimer claims a target's epoch the first time its fence is asked for.
type claimer struct {
	t      *testing.T
	js     jetstream.JetStream
	prefix string

	mu     sync.Mutex
	epochs map[watcher.Target]uint64
}

func (c *claimer) fence(subject string) (string, uint64, bool) {
	tokens := strings.SplitN(strings.TrimPrefix(subject, c.prefix+"."), ".", 4)
	if len(tokens) < 3 {
		return "", 0, false
	}
	tg := watcher.Target{Account: tokens[1], Region: tokens[2]}
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.epochs[tg]
	if !ok {
		var err error
		subject := publisher.EpochSubject(c.prefix, tg.Account, tg.Region)
		if seq, err = publisher.ClaimEpoch(context.Background(), c.js, subject, "r", 1); err != nil {
			c.t.Errorf("claim %s: %v", subject, err)
			return "", 0, false
		}
		c.epochs[tg] = seq
	}
	return publisher.EpochSubject(c.prefix, tg.Account, tg.Region), seq, true
}

// reader reads r without the epoch messages.
func (c *claimer) reader(r publishertest.Reader) publishertest.Reader {
	return publishertest.ReaderFunc(func(ctx context.Context, n int) ([]publisher.Message, error) {
		c.mu.Lock()
		epochs := len(c.epochs)
		c.mu.Unlock()
		msgs, err := r.Messages(ctx, n+epochs)
		out := msgs[:0]
		for _, m := range msgs {
			if !strings.HasPrefix(m.Subject, c.prefix+".epoch.") {
				out = append(out, m)
			}
		}
		return out, err
	})
}
