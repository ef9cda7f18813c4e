package publisher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkStreamBytesPerDay publishes one day of a fleet through the real
// publisher, into the old layout (one stream on cvm.>) and into the new one
// (event stream + scans stream), and reports the streams' State.Bytes:
// 10 targets of 100 instances (1,000), scanned every 30 s (2,880 summaries
// per target per day), 1% of the instances changing state per hour (10
// transitions an hour, 240 a day). Run it once per measurement:
//
//	go test -run '^$' -bench BenchmarkStreamBytesPerDay -benchtime 1x ./publisher/
func BenchmarkStreamBytesPerDay(b *testing.B) {
	const (
		targets   = 10
		perTarget = 100
		interval  = 30 * time.Second
		changesPH = targets * perTarget / 100 // 1% of the fleet per hour
	)
	scansPerTarget := int(24 * time.Hour / interval)
	var tgs []watcher.Target
	for i := range targets {
		tgs = append(tgs, watcher.Target{Account: "prod", Region: fmt.Sprintf("ap-region-%02d", i)})
	}
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		e := MustStartEmbedded(b, publisher.EmbeddedConfig{})
		nc := MustConnect(b, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
		js := MustJetStream(b, nc, 5*time.Second)
		ctx := b.Context()
		// Before: the stream the release before the split created; after:
		// the two streams EnsureStream creates now, under another prefix.
		if _, err := js.CreateStream(ctx, legacyStream("OLD", "old")); err != nil {
			b.Fatal(err)
		}
		if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "NEW", Prefix: "new"}); err != nil {
			b.Fatal(err)
		}
		// A day's transitions: 240 events, spread over the targets.
		events := publishertest.Events(tgs, perTarget, 24*changesPH)
		for _, prefix := range []string{"old", "new"} {
			pub := MustNewJetStream(b, js, publisher.JetStreamConfig{Prefix: prefix})
			if n, err := pub.Publish(ctx, events); err != nil || n != len(events) {
				b.Fatalf("publish: %d of %d, %v", n, len(events), err)
			}
			for i := range scansPerTarget {
				for _, tg := range tgs {
					s := watcher.ScanSummary{Target: tg, Started: day.Add(time.Duration(i) * interval), Duration: 800 * time.Millisecond,
						Complete: true, Instances: perTarget, ByState: map[watcher.State]int{"RUNNING": perTarget - 3, "STOPPED": 3},
						Stats: watcher.ScanStats{Pages: 1, Requests: 1}}
					if err := pub.PublishScan(ctx, s); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		bytes := func(name string) float64 {
			s, err := js.Stream(ctx, name)
			if err != nil {
				b.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			return float64(info.State.Bytes)
		}
		b.ReportMetric(bytes("OLD"), "before-B/day")
		b.ReportMetric(bytes("NEW"), "after-events-B/day")
		b.ReportMetric(bytes("NEW_SCANS"), "after-scans-B")
		if _, err := js.Stream(ctx, "OLD_SCANS"); err != jetstream.ErrStreamNotFound {
			b.Fatalf("a scans stream beside the old layout: %v", err)
		}
	}
}
