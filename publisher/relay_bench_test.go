package publisher_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkRelayDrain100k drains 100,000 events from a bbolt outbox into
// JetStream on the embedded server with the real relay (watcher.RelayOnce:
// read the outbox head, publish with the bounded async window, acknowledge
// the outbox), and compares it with raw js.PublishMsgAsync of the same
// pre-encoded messages, with msg ids, measured in the same run on the same
// server. Goal: ratio_vs_raw >= 0.7.
//
// Run: go test -run '^$' -bench RelayDrain100k -benchtime 1x ./publisher/
func BenchmarkRelayDrain100k(b *testing.B) {
	for _, syncAlways := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync_always=%v", syncAlways), func(b *testing.B) {
			benchRelayDrain(b, syncAlways, watcher.DefaultRelayWindow, publisher.DefaultWindow)
		})
	}
}

// BenchmarkRelayWindows compares relay batch sizes and in-flight windows.
//
// Run: go test -run '^$' -bench RelayWindows -benchtime 1x ./publisher/
func BenchmarkRelayWindows(b *testing.B) {
	for _, batch := range []int{4096, 16384} {
		for _, window := range []int{256, 1024, 2048} {
			b.Run(fmt.Sprintf("batch=%d/window=%d", batch, window), func(b *testing.B) {
				benchRelayDrain(b, false, batch, window)
			})
		}
	}
}

func benchRelayDrain(b *testing.B, syncAlways bool, batch, window int) {
	const total, perCommit = 100_000, 10_000
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: b.TempDir(), SyncAlways: syncAlways})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
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
	raw := make([]*nats.Msg, total)
	for i, e := range events {
		m := nats.NewMsg("raw.state." + e.InstanceID)
		if m.Data, err = watcher.MarshalCloudEvent(e); err != nil {
			b.Fatal(err)
		}
		m.Header.Set("Content-Type", watcher.ContentType)
		raw[i] = m
	}

	var relayTime, rawTime time.Duration
	for b.Loop() {
		b.StopTimer()
		for _, sc := range []publisher.StreamConfig{{Name: "RAW", Prefix: "raw"}, {Name: "CVMWATCH", Prefix: "cvm"}} {
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

		// Relay and raw publishing alternate in rounds of 10,000 events, so
		// that a change of machine load during the run weighs on both alike.
		const round = 10_000
		drained := 0
		for r := 0; r*round < total; r++ {
			start := time.Now()
			for drained < (r+1)*round {
				n, err := w.RelayOnce(b.Context(), prod)
				if err != nil {
					b.Fatalf("relay after %d: %v", drained, err)
				}
				drained += n
			}
			relayTime += time.Since(start)

			start = time.Now()
			for i := r * round; i < (r+1)*round; i++ {
				if _, err := js.PublishMsgAsync(raw[i], jetstream.WithMsgID(events[i].ID), jetstream.WithStallWait(time.Minute)); err != nil {
					b.Fatalf("raw publish %d: %v", i, err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("raw publishes incomplete after 5 minutes")
			}
			rawTime += time.Since(start)
		}
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
}
