package publisher_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkRelayDrain100k drains 100,000 events from a bbolt outbox into
// JetStream on the embedded server with the real relay (watcher.RelayOnce:
// read the outbox head, publish with the bounded async window, acknowledge
// the outbox), and compares it with raw js.PublishMsgAsync of the same
// pre-encoded messages, with msg ids, measured in the same run on the same
// server: ratio_vs_raw. The raw messages carry the relay's subjects under a
// prefix of the same length (the server's cost grows with the subject's
// tokens); ratio_vs_raw_short compares with the baseline used until
// 2026-12-05, subjects <prefix>.state.<instance>. Goal: ratio_vs_raw >= 0.9
// without fsync, on a NATS server of its own (server=process: the external
// cluster the goal stands for); sync_always=false, the embedded server
// without fsync, was its proxy before.
//
// Run: go test -run '^$' -bench RelayDrain100k -benchtime 1x ./publisher/
func BenchmarkRelayDrain100k(b *testing.B) {
	for _, syncAlways := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync_always=%v", syncAlways), func(b *testing.B) {
			url := embeddedServer(b, syncAlways)
			benchRelayDrain(b, url, watcher.DefaultRelayWindow, publisher.DefaultWindow)
		})
	}
	// The deployment the no-fsync figure stands for: a NATS server of its
	// own (here a nats-server process on the same 2 cores and disk), so that
	// the relay's garbage collection and the server's are apart.
	b.Run("server=process", func(b *testing.B) {
		benchRelayDrain(b, natstest.StartServer(b).URL(), watcher.DefaultRelayWindow, publisher.DefaultWindow)
	})
}

// embeddedServer starts the embedded server for the benchmark and returns
// its client URL.
func embeddedServer(b *testing.B, syncAlways bool) string {
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: b.TempDir(), SyncAlways: syncAlways})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// BenchmarkRelayWindows compares relay batch sizes and in-flight windows.
//
// Run: go test -run '^$' -bench RelayWindows -benchtime 1x ./publisher/
func BenchmarkRelayWindows(b *testing.B) {
	for _, batch := range []int{16384, 32768} {
		for _, window := range []int{2048, 3900} {
			b.Run(fmt.Sprintf("batch=%d/window=%d", batch, window), func(b *testing.B) {
				benchRelayDrain(b, embeddedServer(b, false), batch, window)
			})
		}
	}
}

func benchRelayDrain(b *testing.B, url string, batch, window int) {
	const total = 100_000
	js, pub := benchPublisher(b, url, window)
	events := benchEvents(prod, total)
	sameSubject := func(e watcher.Event) string { return mustSubject(b, e, "raw") }
	shortSubject := func(e watcher.Event) string { return "srt.state." + e.InstanceID }

	var relayTime, rawTime, shortTime time.Duration
	iteration := 0
	for b.Loop() {
		b.StopTimer()
		resetStreams(b, js, publisher.StreamConfig{Name: "RAW", Prefix: "raw"}, publisher.StreamConfig{Name: "SHORT", Prefix: "srt"},
			publisher.StreamConfig{Name: "CVMWATCH", Prefix: "cvm"})
		st := benchOutbox(b, map[watcher.Target][]watcher.Event{prod: events})
		w, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: slog.New(slog.DiscardHandler), RelayWindow: batch}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		// Each of the three drains all 100,000 events in turn, in an order
		// that rotates with each iteration, so that a drift of machine load
		// weighs on all alike. (Finer rounds would let the relay's delete in
		// progress, which overlaps its next batch, run during the others.)
		phases := []func(){
			func() { relayTime += drainRelay(b, w, prod, total) },
			func() { rawTime += encodeAndPublishRaw(b, js, events, sameSubject) },
			func() { shortTime += encodeAndPublishRaw(b, js, events, shortSubject) },
		}
		for i := range phases {
			phases[(i+iteration)%len(phases)]()
		}
		iteration++
		b.StopTimer()
		if depth, _, _ := st.OutboxStats(b.Context(), prod); depth != 0 {
			b.Fatalf("outbox depth %d after the drain", depth)
		}
		st.Close()
		b.StartTimer()
	}
	n := float64(b.N * total)
	b.ReportMetric(n/relayTime.Seconds(), "relay_msgs/s")
	b.ReportMetric(n/rawTime.Seconds(), "raw_msgs/s")
	b.ReportMetric(rawTime.Seconds()/relayTime.Seconds(), "ratio_vs_raw")
	b.ReportMetric(shortTime.Seconds()/relayTime.Seconds(), "ratio_vs_raw_short")
}

// noAckStore is a bbolt store whose Acknowledge deletes nothing, for the
// relay without its deletes.
type noAckStore struct{ *store.Bolt }

func (noAckStore) Acknowledge(context.Context, watcher.Target, uint64) error { return nil }

// BenchmarkRelayCostSplit splits the gap between the relay and raw
// publishing by taking parts away, in one run, each drain of 100,000 events
// in turn in an order that rotates with each iteration: the relay, the relay
// whose outbox deletes nothing (noAckStore), the JetStream publisher alone
// on the same events held in memory (batches of 16,384), and raw
// PublishMsgAsync of pre-encoded messages with the relay's subjects. Each
// is reported as raw's time over its own.
//
// Run: go test -run '^$' -bench RelayCostSplit -benchtime 8x -count 3 ./publisher/
func BenchmarkRelayCostSplit(b *testing.B) {
	const total = 100_000
	js, pub := benchPublisher(b, embeddedServer(b, false), publisher.DefaultWindow)
	target := func(account string) watcher.Target { return watcher.Target{Account: account, Region: "ap-guangzhou"} }
	tRelay, tNoAck, tAlone, tRaw := target("pra"), target("prb"), target("prc"), target("prd")
	eRelay, eNoAck, eAlone, eRaw := benchEvents(tRelay, total), benchEvents(tNoAck, total), benchEvents(tAlone, total), benchEvents(tRaw, total)
	sameSubject := func(e watcher.Event) string { return mustSubject(b, e, "raw") }
	var times [4]time.Duration
	iteration := 0
	for b.Loop() {
		resetStreams(b, js, publisher.StreamConfig{Name: "CVMWATCH", Prefix: "cvm"}, publisher.StreamConfig{Name: "RAW", Prefix: "raw"})
		st := benchOutbox(b, map[watcher.Target][]watcher.Event{tRelay: eRelay, tNoAck: eNoAck})
		quiet := slog.New(slog.DiscardHandler)
		relay, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: quiet}, nil)
		if err != nil {
			b.Fatal(err)
		}
		noAck, err := watcher.New(watcher.Config{Store: noAckStore{st}, Publisher: pub, Logger: quiet}, nil)
		if err != nil {
			b.Fatal(err)
		}
		alone := func() time.Duration {
			runtime.GC()
			start := time.Now()
			for i := 0; i < total; i += watcher.DefaultRelayWindow {
				if _, err := pub.Publish(b.Context(), eAlone[i:min(total, i+watcher.DefaultRelayWindow)]); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		phases := []func() time.Duration{
			func() time.Duration { return drainRelay(b, relay, tRelay, total) },
			func() time.Duration { return drainRelay(b, noAck, tNoAck, total) },
			alone,
			func() time.Duration { return encodeAndPublishRaw(b, js, eRaw, sameSubject) },
		}
		for k := range phases {
			j := (k + iteration) % len(phases)
			times[j] += phases[j]()
		}
		iteration++
		st.Close()
	}
	b.ReportMetric(times[3].Seconds()/times[0].Seconds(), "relay")
	b.ReportMetric(times[3].Seconds()/times[1].Seconds(), "relay_without_deletes")
	b.ReportMetric(times[3].Seconds()/times[2].Seconds(), "publisher_alone")
}

// benchPublisher connects to url and returns a JetStream context with
// nats.go's default limit of 4,000 pending async publishes (raw publishing
// runs at it, through the library) and the relay's publisher on the same
// connection, through the light path the daemon's context takes
// (NewJetStreamContext).
func benchPublisher(b *testing.B, url string, window int) (jetstream.JetStream, *publisher.JetStream) {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(time.Minute), jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	pub, err := publisher.NewJetStream(publisher.LightAsync(js, time.Minute, publisher.AsyncMaxPending), publisher.JetStreamConfig{AckTimeout: time.Minute, Window: window})
	if err != nil {
		b.Fatal(err)
	}
	return js, pub
}

// benchEvents returns n state changes of tg, one per instance.
func benchEvents(tg watcher.Target, n int) []watcher.Event {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	events := make([]watcher.Event, n)
	for i := range events {
		id := fmt.Sprintf("ins-%08d", i)
		events[i] = watcher.Event{ID: watcher.EventID(tg, id, 1, "RUNNING", "STOPPED"), Target: tg,
			InstanceID: id, From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: t0, PreviousObservedAt: t0}
	}
	return events
}

func mustSubject(b *testing.B, e watcher.Event, prefix string) string {
	subject, err := e.Subject(prefix)
	if err != nil {
		b.Fatal(err)
	}
	return subject
}

// resetStreams deletes and creates the streams afresh.
func resetStreams(b *testing.B, js jetstream.JetStream, streams ...publisher.StreamConfig) {
	for _, sc := range streams {
		_ = js.DeleteStream(b.Context(), sc.Name)
		if _, err := publisher.EnsureStream(b.Context(), js, sc); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOutbox returns a new bbolt store whose outboxes hold the events,
// committed 10,000 at a time.
func benchOutbox(b *testing.B, outboxes map[watcher.Target][]watcher.Event) *store.Bolt {
	st, err := store.Open(filepath.Join(b.TempDir(), "relay.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for tg, events := range outboxes {
		for i := 0; i < len(events); i += 10_000 {
			if _, _, err := st.Commit(b.Context(), tg, watcher.Commit{Events: events[i:min(len(events), i+10_000)]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st
}

// drainRelay runs w's relay of tg until n events are relayed, after a
// garbage collection, and returns the time it took.
func drainRelay(b *testing.B, w *watcher.Watcher, tg watcher.Target, n int) time.Duration {
	runtime.GC()
	start := time.Now()
	for drained := 0; drained < n; {
		k, err := w.RelayOnce(b.Context(), tg)
		if err != nil {
			b.Fatalf("relay after %d: %v", drained, err)
		}
		drained += k
	}
	return time.Since(start)
}

// encodeAndPublishRaw encodes the events with the given subjects and then
// publishes them with publishRaw, timing only the publishing. The messages
// are built just before and dropped after, so that no phase's garbage
// collection marks another's.
func encodeAndPublishRaw(b *testing.B, js jetstream.JetStream, events []watcher.Event, subject func(watcher.Event) string) time.Duration {
	msgs := make([]*nats.Msg, len(events))
	for i, e := range events {
		msgs[i] = nats.NewMsg(subject(e))
		data, err := watcher.MarshalCloudEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i].Data = data
		msgs[i].Header.Set("Content-Type", watcher.ContentType)
	}
	runtime.GC()
	return publishRaw(b, js, msgs, events)
}
