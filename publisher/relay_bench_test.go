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
// without fsync.
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
	const total, perCommit = 100_000, 10_000
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(time.Minute), jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	pub, err := publisher.NewJetStream(js, publisher.JetStreamConfig{AckTimeout: time.Minute, Window: window})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	events := make([]watcher.Event, total)
	for i := range events {
		id := fmt.Sprintf("ins-%08d", i)
		events[i] = watcher.Event{ID: watcher.EventID(prod, id, 1, "RUNNING", "STOPPED"), Target: prod,
			InstanceID: id, From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: t0, PreviousObservedAt: t0}
	}
	// The raw messages of a phase are built just before it and dropped
	// after it, so that no phase's garbage collection marks the messages of
	// another (200,000 messages, about 140 MB).
	encodeRaw := func(subject func(watcher.Event) string) []*nats.Msg {
		msgs := make([]*nats.Msg, total)
		for i, e := range events {
			msgs[i] = nats.NewMsg(subject(e))
			if msgs[i].Data, err = watcher.MarshalCloudEvent(e); err != nil {
				b.Fatal(err)
			}
			msgs[i].Header.Set("Content-Type", watcher.ContentType)
		}
		return msgs
	}
	sameSubject := func(e watcher.Event) string {
		subject, err := e.Subject("raw")
		if err != nil {
			b.Fatal(err)
		}
		return subject
	}
	shortSubject := func(e watcher.Event) string { return "srt.state." + e.InstanceID }
	publishRaw := func(subject func(watcher.Event) string) time.Duration {
		msgs := encodeRaw(subject)
		runtime.GC()
		start := time.Now()
		for i := range msgs {
			if _, err := js.PublishMsgAsync(msgs[i], jetstream.WithMsgID(events[i].ID), jetstream.WithStallWait(time.Minute)); err != nil {
				b.Fatalf("raw publish %d: %v", i, err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(5 * time.Minute):
			b.Fatal("raw publishes incomplete after 5 minutes")
		}
		return time.Since(start)
	}

	var relayTime, rawTime, shortTime time.Duration
	iteration := 0
	for b.Loop() {
		b.StopTimer()
		for _, sc := range []publisher.StreamConfig{{Name: "RAW", Prefix: "raw"}, {Name: "SHORT", Prefix: "srt"}, {Name: "CVMWATCH", Prefix: "cvm"}} {
			_ = js.DeleteStream(b.Context(), sc.Name)
			if _, err := publisher.EnsureStream(b.Context(), js, sc); err != nil {
				b.Fatal(err)
			}
		}
		st, err := store.Open(filepath.Join(b.TempDir(), "relay.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < total; i += perCommit {
			if _, _, err := st.Commit(b.Context(), prod, watcher.Commit{Events: events[i : i+perCommit]}); err != nil {
				b.Fatal(err)
			}
		}
		w, err := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: slog.New(slog.DiscardHandler), RelayWindow: batch}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		// Each of the three drains all 100,000 events in turn, in an order
		// that rotates with each iteration, so that a drift of machine load
		// weighs on all alike. (Finer rounds would let the relay's delete in
		// progress, which overlaps its next batch, run during the others.)
		relay := func() time.Duration {
			runtime.GC()
			start := time.Now()
			for drained := 0; drained < total; {
				n, err := w.RelayOnce(b.Context(), prod)
				if err != nil {
					b.Fatalf("relay after %d: %v", drained, err)
				}
				drained += n
			}
			return time.Since(start)
		}
		phases := []func(){
			func() { relayTime += relay() },
			func() { rawTime += publishRaw(sameSubject) },
			func() { shortTime += publishRaw(shortSubject) },
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
	url := embeddedServer(b, false)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(time.Minute), jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	pub, err := publisher.NewJetStream(js, publisher.JetStreamConfig{AckTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	mkEvents := func(tg watcher.Target) []watcher.Event {
		events := make([]watcher.Event, total)
		for i := range events {
			id := fmt.Sprintf("ins-%08d", i)
			events[i] = watcher.Event{ID: watcher.EventID(tg, id, 1, "RUNNING", "STOPPED"), Target: tg,
				InstanceID: id, From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: t0, PreviousObservedAt: t0}
		}
		return events
	}
	tR, tN, tP, tW := watcher.Target{Account: "pra", Region: "ap-guangzhou"}, watcher.Target{Account: "prb", Region: "ap-guangzhou"},
		watcher.Target{Account: "prc", Region: "ap-guangzhou"}, watcher.Target{Account: "prd", Region: "ap-guangzhou"}
	eR, eN, eP, eW := mkEvents(tR), mkEvents(tN), mkEvents(tP), mkEvents(tW)
	var times [4]time.Duration
	it := 0
	for b.Loop() {
		_ = js.DeleteStream(b.Context(), "CVMWATCH")
		_ = js.DeleteStream(b.Context(), "RAW")
		if _, err := publisher.EnsureStream(b.Context(), js, publisher.StreamConfig{Name: "CVMWATCH", Prefix: "cvm"}); err != nil {
			b.Fatal(err)
		}
		if _, err := publisher.EnsureStream(b.Context(), js, publisher.StreamConfig{Name: "RAW", Prefix: "raw"}); err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(filepath.Join(b.TempDir(), "relay.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, tc := range []struct {
			tg watcher.Target
			ev []watcher.Event
		}{{tR, eR}, {tN, eN}} {
			for i := 0; i < total; i += 10_000 {
				if _, _, err := st.Commit(b.Context(), tc.tg, watcher.Commit{Events: tc.ev[i : i+10_000]}); err != nil {
					b.Fatal(err)
				}
			}
		}
		wR, _ := watcher.New(watcher.Config{Store: st, Publisher: pub, Logger: slog.New(slog.DiscardHandler)}, nil)
		wN, _ := watcher.New(watcher.Config{Store: noAckStore{st}, Publisher: pub, Logger: slog.New(slog.DiscardHandler)}, nil)
		relay := func(w *watcher.Watcher, tg watcher.Target) func() time.Duration {
			return func() time.Duration {
				runtime.GC()
				start := time.Now()
				for drained := 0; drained < total; {
					n, err := w.RelayOnce(b.Context(), tg)
					if err != nil {
						b.Fatal(err)
					}
					drained += n
				}
				return time.Since(start)
			}
		}
		pubOnly := func() time.Duration {
			runtime.GC()
			start := time.Now()
			for i := 0; i < total; i += 16384 {
				if _, err := pub.Publish(b.Context(), eP[i:min(total, i+16384)]); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		raw := func() time.Duration {
			msgs := make([]*nats.Msg, total)
			for i, e := range eW {
				s, _ := e.Subject("raw")
				msgs[i] = nats.NewMsg(s)
				msgs[i].Data, _ = watcher.MarshalCloudEvent(e)
				msgs[i].Header.Set("Content-Type", watcher.ContentType)
			}
			runtime.GC()
			start := time.Now()
			for i := range msgs {
				if _, err := js.PublishMsgAsync(msgs[i], jetstream.WithMsgID(eW[i].ID), jetstream.WithStallWait(time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
			return time.Since(start)
		}
		phases := []func() time.Duration{relay(wR, tR), relay(wN, tN), pubOnly, raw}
		for k := range phases {
			j := (k + it) % len(phases)
			times[j] += phases[j]()
		}
		it++
		st.Close()
	}
	b.ReportMetric(times[3].Seconds()/times[0].Seconds(), "relay")
	b.ReportMetric(times[3].Seconds()/times[1].Seconds(), "relay_without_deletes")
	b.ReportMetric(times[3].Seconds()/times[2].Seconds(), "publisher_alone")
}
