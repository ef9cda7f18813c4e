package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/notifier"
	"github.com/cvmwatch/cvmwatch/notifier/notifiertest"
	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// natsRig is an embedded JetStream server with the events stream.
func natsRig(t *testing.T) jetstream.JetStream {
	t.Helper()
	e, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := publisher.Connect(publisher.ConnConfig{URLs: []string{e.ClientURL()}}, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{Name: "CVMWATCH", Prefix: "cvm"}); err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	return js
}

// publish publishes n state events of distinct instances, as the watcher does.
func publish(t *testing.T, js jetstream.JetStream, n int, to watcher.State) []watcher.Event {
	t.Helper()
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	var out []watcher.Event
	for i := range n {
		id := fmt.Sprintf("ins-%05d", i)
		e := watcher.Event{ID: watcher.EventID(tgt, id, 2, "RUNNING", to), Target: tgt, InstanceID: id, From: "RUNNING", To: to,
			Sequence: 2, ObservedAt: time.Now().UTC().Truncate(time.Second)}
		body, err := watcher.MarshalCloudEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := e.Subject("cvm")
		m := nats.NewMsg(subj)
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatalf("publish: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// crashingSent is a SentStore that, once armed, records the sent events and
// then "crashes" the notifier (cancels its context) before any ack: from
// then on it records nothing, as a dead process would not.
type crashingSent struct {
	notifier.SentStore
	mu      sync.Mutex
	crash   func()
	crashed bool
}

func (c *crashingSent) Mark(ctx context.Context, keys []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return errors.New("crashed")
	}
	if err := c.SentStore.Mark(ctx, keys); err != nil {
		return err
	}
	if c.crash != nil {
		c.crash()
		c.crashed = true
		return errors.New("crashed")
	}
	return nil
}

// runNotifier runs one notifier process (consumer + pipeline) until ctx
// ends.
func runNotifier(ctx context.Context, t *testing.T, js jetstream.JetStream, room *notifiertest.Room, url string, sent notifier.SentStore) {
	t.Helper()
	router, err := notifier.NewRouter([]notifier.Route{{Name: "all", Sinks: []string{"room"}, GroupWait: 200 * time.Millisecond, GroupMax: 10}})
	if err != nil {
		t.Fatal(err)
	}
	senders := map[string]*notifier.Sender{"room": notifier.NewSender("room", &notifier.Webhook{URL: url, Secret: "s"}, notifier.SenderOptions{})}
	p, err := notifier.NewPipeline(notifier.PipelineConfig{Router: router, Senders: senders, Sent: sent})
	if err != nil {
		t.Fatal(err)
	}
	c, err := notifier.NewConsumer(ctx, js, notifier.ConsumerConfig{Stream: "CVMWATCH", Durable: "notify", Filter: router.Filter("cvm"),
		AckWait: time.Second, StartBack: time.Hour})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := c.Run(ctx, p); err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()
	wg.Wait()
}

// sentAndRoom opens the sent-events bucket and serves a signed webhook
// room, whose URL it returns.
func sentAndRoom(t *testing.T, js jetstream.JetStream) (*notifier.KVSent, *notifiertest.Room, string) {
	t.Helper()
	sent, _, err := notifier.OpenKVSent(t.Context(), js, "notify_sent", time.Hour, publisher.AutoReplicas)
	if err != nil {
		t.Fatalf("OpenKVSent: %v", err)
	}
	room := notifiertest.NewRoom(notifiertest.Webhook, notifiertest.Options{Secret: "s"})
	return sent, room, room.Server(t).URL
}

// waitAcked waits until the durable consumer has nothing pending or
// unacknowledged.
func waitAcked(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the consumer did not acknowledge every event in 20s")
		}
		c, err := js.Consumer(t.Context(), "CVMWATCH", "notify")
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			time.Sleep(50 * time.Millisecond) // the notifier has not created it yet
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventsIn counts each event id across the room's messages.
func eventsIn(t *testing.T, room *notifiertest.Room) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, m := range room.Messages() {
		for _, raw := range m.Events {
			e, err := notifier.DecodeEvent(raw)
			if err != nil {
				t.Fatalf("room got an undecodable event: %v", err)
			}
			seen[e.ID]++
		}
	}
	return seen
}

// toldOnce fails t unless the room was told each of events exactly once,
// and returns the count of every event it was told.
func toldOnce(t *testing.T, room *notifiertest.Room, events []watcher.Event) map[string]int {
	t.Helper()
	seen := eventsIn(t, room)
	for _, e := range events {
		if got := seen[e.ID]; got != 1 {
			t.Fatalf("event %s told %d times, want once (room: %d messages)", e.InstanceID, got, len(room.Messages()))
		}
	}
	return seen
}

// TestConsumerRestartBetweenPostAndAckRepeatsNothing: the notifier dies
// after a message was accepted and recorded but before its events were
// acknowledged; the next run gets them again and tells no one twice, and
// every event reaches the room exactly once.
func TestConsumerRestartBetweenPostAndAckRepeatsNothing(t *testing.T) {
	js := natsRig(t)
	sent, room, url := sentAndRoom(t, js)
	// The consumer exists before the events, as a running notifier's does.
	ctx1, crash := context.WithCancel(t.Context())
	cs := &crashingSent{SentStore: sent, crash: crash}
	done := make(chan struct{})
	go func() { defer close(done); runNotifier(ctx1, t, js, room, url, cs) }()
	events := publish(t, js, 25, "STOPPED")
	<-done
	first := len(room.Messages())
	if first == 0 {
		t.Fatalf("the first run sent nothing before its crash: the test proves nothing")
	}
	ctx2, stop := context.WithCancel(t.Context())
	done2 := make(chan struct{})
	go func() { defer close(done2); runNotifier(ctx2, t, js, room, url, sent) }()
	waitAcked(t, js)
	stop()
	<-done2
	seen := toldOnce(t, room, events)
	if got := len(seen); got != len(events) {
		t.Fatalf("room has %d distinct events, want %d", got, len(events))
	}
	for _, m := range room.Messages() {
		if !strings.Contains(m.Title, "STOPPED") {
			t.Fatalf("title %q lacks the state", m.Title)
		}
	}
}

// TestConsumerResumesWhereItStopped: events published while the notifier
// is down are told after it starts again, once each.
func TestConsumerResumesWhereItStopped(t *testing.T) {
	js := natsRig(t)
	sent, room, url := sentAndRoom(t, js)
	ctx1, stop1 := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); runNotifier(ctx1, t, js, room, url, sent) }()
	before := publish(t, js, 5, "STOPPED")
	waitAcked(t, js)
	stop1()
	<-done
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	var after []watcher.Event
	for i := range 5 { // while down: the same instances start again
		id := fmt.Sprintf("ins-%05d", i)
		after = append(after, watcher.Event{ID: watcher.EventID(tgt, id, 3, "STOPPED", "RUNNING"), InstanceID: id})
	}
	publishStarts(t, js, after)
	ctx2, stop2 := context.WithCancel(t.Context())
	done2 := make(chan struct{})
	go func() { defer close(done2); runNotifier(ctx2, t, js, room, url, sent) }()
	waitAcked(t, js)
	stop2()
	<-done2
	toldOnce(t, room, append(before, after...))
}

func publishStarts(t *testing.T, js jetstream.JetStream, events []watcher.Event) {
	t.Helper()
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	for _, e := range events {
		e.Target, e.From, e.To, e.Sequence, e.ObservedAt = tgt, "STOPPED", "RUNNING", 3, time.Now().UTC().Truncate(time.Second)
		body, _ := watcher.MarshalCloudEvent(e)
		subj, _ := e.Subject("cvm")
		if _, err := js.Publish(t.Context(), subj, body, jetstream.WithMsgID(e.ID)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsumerSkipsAnEventWhoseIDCannotBeRemembered: an event whose id is
// not a token (a foreign publisher's) can be neither looked up nor recorded
// in the sent-events bucket; it is skipped, and the events after it are
// still told, with the consumer running on.
func TestConsumerSkipsAnEventWhoseIDCannotBeRemembered(t *testing.T) {
	js := natsRig(t)
	sent, room, url := sentAndRoom(t, js)
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	bad := watcher.Event{ID: "not a key*", Target: tgt, InstanceID: "ins-bad", From: "RUNNING", To: "STOPPED",
		Sequence: 2, ObservedAt: time.Now().UTC().Truncate(time.Second)}
	body, err := watcher.MarshalCloudEvent(bad)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); runNotifier(ctx, t, js, room, url, sent) }()
	subj, _ := bad.Subject("cvm")
	if _, err := js.Publish(t.Context(), subj, body); err != nil {
		t.Fatal(err)
	}
	good := publish(t, js, 3, "STOPPED")
	waitFor(t, "the events after it to be told", func() bool { return len(eventsIn(t, room)) >= len(good) })
	waitAcked(t, js)
	stop()
	<-done
	if got := toldOnce(t, room, good)[bad.ID]; got != 0 {
		t.Fatalf("the event with id %q was told %d times", bad.ID, got)
	}
}

// waitFor polls cond until it holds, or fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
