package publisher_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkRelayThroughput publishes 100,000 events through
// (*JetStream).Publish in batches of 1,000, as the relay does, and the same
// 100,000 messages, pre-encoded, with raw js.PublishMsgAsync (msg ids, max
// pending 4000, one wait at the end) as the baseline, on an embedded server
// with file storage, with and without SyncAlways. It reports both rates and
// their ratio. Run it with -benchtime 1x: one iteration is 200,000 publishes.
//
// The data sets differ in how often an instance repeats within a batch, which
// is what the "never two events of one instance in flight" rule pays for:
// all distinct; 10,000 instances round robin (10 events each, as successive
// scans commit them: a scan commits at most one event per instance, so this
// and the first are the relay's normal case); 10,000 instances drawn at random
// (~10 events each, in chain order: a pessimistic case, where ~2.5% of the
// events find an earlier event of their instance in a 256 window and must
// wait for its ack); and 100 instances round robin (a stress case: at most
// 100 events can be in flight).
func BenchmarkRelayThroughput(b *testing.B) {
	const total, batch = 100_000, 1_000
	sets := []struct {
		name   string
		events func() []watcher.Event
	}{
		{"instances=100000", func() []watcher.Event { return publishertest.Events([]watcher.Target{prod}, total, total) }},
		{"instances=10000", func() []watcher.Event { return publishertest.Events([]watcher.Target{prod}, 10_000, total) }},
		{"random-instances=10000", func() []watcher.Event { return randomEvents(10_000, total) }},
		{"instances=100", func() []watcher.Event { return publishertest.Events([]watcher.Target{prod}, 100, total) }},
	}
	for _, syncAlways := range []bool{false, true} {
		for _, set := range sets {
			if syncAlways && (set.name == "instances=100" || set.name == "instances=10000") {
				continue // slow, and says nothing the others do not
			}
			b.Run(fmt.Sprintf("sync=%v/%s", syncAlways, set.name), func(b *testing.B) {
				benchRelay(b, syncAlways, set.events(), batch)
			})
		}
	}
}

func benchRelay(b *testing.B, syncAlways bool, events []watcher.Event, batch int) {
	e := MustStartEmbedded(b, publisher.EmbeddedConfig{SyncAlways: syncAlways})
	nc := MustConnect(b, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(b, nc, 30*time.Second)
	p, err := publisher.NewJetStream(js, publisher.JetStreamConfig{AckTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]*nats.Msg, len(events))
	for i, ev := range events {
		subject, err := ev.Subject("raw")
		if err != nil {
			b.Fatal(err)
		}
		m := nats.NewMsg(subject)
		if m.Data, err = watcher.MarshalCloudEvent(ev); err != nil {
			b.Fatal(err)
		}
		m.Header.Set(publisher.HeaderContentType, watcher.ContentType)
		raw[i] = m
	}

	// Raw and relay publishing alternate in rounds of 10,000 events (who
	// goes first alternates too), so that a change of machine load during
	// the run weighs on both alike.
	const round = 10_000
	var rawTime, pubTime time.Duration
	for b.Loop() {
		b.StopTimer()
		for _, sc := range []publisher.StreamConfig{{Name: "RAW", Prefix: "raw"}, {Name: "CVMWATCH", Prefix: "cvm"}} {
			_ = js.DeleteStream(b.Context(), sc.Name)
			if _, err := publisher.EnsureStream(b.Context(), js, sc); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for r := 0; r*round < len(events); r++ {
			lo, hi := r*round, min((r+1)*round, len(events))
			if r%2 == 0 {
				rawTime += publishRaw(b, js, raw[lo:hi], events[lo:hi])
				pubTime += publishRelay(b, p, events[lo:hi], batch)
			} else {
				pubTime += publishRelay(b, p, events[lo:hi], batch)
				rawTime += publishRaw(b, js, raw[lo:hi], events[lo:hi])
			}
		}
	}
	n := float64(b.N * len(events))
	rawRate, pubRate := n/rawTime.Seconds(), n/pubTime.Seconds()
	b.ReportMetric(pubRate, "msgs/s")
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(pubRate/rawRate, "ratio_vs_raw")
}

// publishRaw publishes msgs with PublishMsgAsync and waits for all acks.
func publishRaw(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg, events []watcher.Event) time.Duration {
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(events[i].ID), jetstream.WithStallWait(30*time.Second))
		if err != nil {
			b.Fatalf("raw publish %d: %v", i, err)
		}
		futures[i] = f
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("raw publishes not complete after 5 minutes")
	}
	d := time.Since(start)
	for i, f := range futures {
		select {
		case err := <-f.Err():
			b.Fatalf("raw publish %d: %v", i, err)
		default:
		}
	}
	return d
}

// publishRelay publishes events through p in batches, as the relay does.
func publishRelay(b *testing.B, p *publisher.JetStream, events []watcher.Event, batch int) time.Duration {
	start := time.Now()
	for i := 0; i < len(events); i += batch {
		chunk := events[i:min(i+batch, len(events))]
		if acked, err := p.Publish(b.Context(), chunk); acked != len(chunk) || err != nil {
			b.Fatalf("Publish events %d..: %d, %v", i, acked, err)
		}
	}
	return time.Since(start)
}

// randomEvents returns n events of instances drawn at random (fixed seed),
// each instance's events in chain order (ABSENT -> RUNNING, RUNNING <->
// STOPPED).
func randomEvents(instances, n int) []watcher.Event {
	r := rand.New(rand.NewPCG(1, 2))
	seq := make([]uint64, instances)
	out := make([]watcher.Event, n)
	at := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for k := range out {
		i := r.IntN(instances)
		from, to := watcher.StateStopped, watcher.StateRunning
		switch {
		case seq[i] == 0:
			from = watcher.Absent
		case seq[i]%2 == 1:
			from, to = watcher.StateRunning, watcher.StateStopped
		}
		seq[i]++
		out[k] = publishertest.Event(prod, fmt.Sprintf("ins-%08d", i), seq[i], from, to, at, time.Time{})
	}
	return out
}
