package publisher_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// legacyStream is the stream EnsureStream created before the scans stream
// was split off (commit f77da06): one stream capturing <prefix>.>.
func legacyStream(name, prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "cvmwatch: CVM instance state events and scan summaries",
		Subjects:    []string{prefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  publisher.DefaultDuplicates,
		Replicas:    1,
	}
}

// scanSummary is the summary of a scan of t that started at at.
func scanSummary(t watcher.Target, at time.Time, instances int) watcher.ScanSummary {
	return watcher.ScanSummary{Target: t, Started: at, Duration: time.Second, Complete: true, Instances: instances,
		ByState: map[watcher.State]int{"RUNNING": instances}}
}

// held counts the messages of stream whose subject matches filter.
func held(t *testing.T, js jetstream.JetStream, stream, filter string) int {
	t.Helper()
	msgs, err := publisher.ReadAll(t.Context(), js, stream, filter)
	if err != nil {
		t.Fatalf("read %s of %s: %v", filter, stream, err)
	}
	return len(msgs)
}

// A stream written by the release before the split (events and summaries
// interleaved under cvm.>) is narrowed to the event subjects, the scans
// stream is created, and the old summaries are purged from the event
// stream; every event stays, and new summaries go to the scans stream.
func TestEnsureStreamUpgradesTheOldLayout(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, legacyStream("CVMWATCH", "cvm")); err != nil {
		t.Fatal(err)
	}
	pub := MustNewJetStream(t, js, publisher.JetStreamConfig{})
	targets := []watcher.Target{{Account: "prod", Region: "ap-guangzhou"}, {Account: "prod", Region: "ap-shanghai"}}
	events := publishertest.Events(targets, 5, 20)
	if n, err := pub.Publish(ctx, events); err != nil || n != len(events) {
		t.Fatalf("publish: %d of %d, %v", n, len(events), err)
	}
	at := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	for i := range 6 {
		for _, tg := range targets {
			if err := pub.PublishScan(ctx, scanSummary(tg, at.Add(time.Duration(i)*30*time.Second), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := held(t, js, "CVMWATCH", "cvm.scan.>"), 12; got != want {
		t.Fatalf("summaries in the old stream = %d, want %d", got, want)
	}

	var logs syncBuffer
	cfg := publisher.StreamConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 2 { // the second run finds the new layout and changes nothing
		if _, err := publisher.EnsureStream(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, "CVMWATCH")
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if got, want := strings.Join(c.Subjects, ","), "cvm.state.>,cvm.attribution.>,cvm.operation.>"; got != want {
		t.Errorf("event stream subjects %q, want %q", got, want)
	}
	if got, want := held(t, js, "CVMWATCH", "cvm.scan.>"), 0; got != want {
		t.Errorf("old summaries left in the event stream = %d, want %d", got, want)
	}
	if got, want := held(t, js, "CVMWATCH", "cvm.state.>"), len(events); got != want {
		t.Errorf("events in the event stream = %d, want %d", got, want)
	}
	if !strings.Contains(logs.String(), "narrowed") || !strings.Contains(logs.String(), "summaries=12") {
		t.Errorf("the log does not say what the upgrade did:\n%s", logs.String())
	}

	if err := pub.PublishScan(ctx, scanSummary(targets[0], at.Add(time.Hour), 42)); err != nil {
		t.Fatal(err)
	}
	got, err := publisher.LatestScan(ctx, js, "CVMWATCH_SCANS", "cvm", targets[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.Instances != 42 {
		t.Errorf("latest summary of %s has %d instances, want 42 (the one published after the upgrade)", targets[0], got.Instances)
	}
	if _, err := publisher.LatestScan(ctx, js, "CVMWATCH_SCANS", "cvm", targets[1]); !errors.Is(err, publisher.ErrNoScan) {
		t.Errorf("latest summary of %s, never published to the scans stream: %v, want ErrNoScan", targets[1], err)
	}
	if got, want := held(t, js, "CVMWATCH", "cvm.scan.>"), 0; got != want {
		t.Errorf("summaries stored in the event stream after the upgrade = %d, want %d", got, want)
	}
}

// An operator's stream on <prefix>.> is never changed: the warning gives
// the commands, summaries stay in it, and no scans stream is made.
func TestEnsureStreamLeavesAnOperatorsWideStream(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	ctx := t.Context()
	own := legacyStream("AUDIT", "ops")
	own.Description = "the ops team's audit stream"
	if _, err := js.CreateStream(ctx, own); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "AUDIT", Prefix: "ops", Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(s.CachedInfo().Config.Subjects, ","), "ops.>"; got != want {
		t.Errorf("an operator's stream changed subjects to %q, want %q", got, want)
	}
	want := "nats stream edit AUDIT --subjects 'ops.state.>' --subjects 'ops.attribution.>' --subjects 'ops.operation.>' -f && nats stream purge AUDIT --subject 'ops.scan.>' -f"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the warning does not say what to run (%s):\n%s", want, logs.String())
	}
	if _, err := js.Stream(ctx, "AUDIT_SCANS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("scans stream beside a stream that captures the summaries: %v, want none", err)
	}
}

// The scans stream keeps the last ScanKeep summaries of each target, and
// the latest is one get away.
func TestScanStreamKeepsTheLastOfEachTarget(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	ctx := t.Context()
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{ScanKeep: 3}); err != nil {
		t.Fatal(err)
	}
	pub := MustNewJetStream(t, js, publisher.JetStreamConfig{})
	a, b := watcher.Target{Account: "prod", Region: "ap-guangzhou"}, watcher.Target{Account: "prod", Region: "ap-beijing"}
	at := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	for i := 1; i <= 5; i++ {
		if err := pub.PublishScan(ctx, scanSummary(a, at.Add(time.Duration(i)*time.Minute), i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.PublishScan(ctx, scanSummary(b, at, 7)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter string
		want   int
	}{{"cvm.scan.prod.ap-guangzhou", 3}, {"cvm.scan.prod.ap-beijing", 1}} {
		if got := held(t, js, "CVMWATCH_SCANS", tc.filter); got != tc.want {
			t.Errorf("%s: %d summaries kept, want %d", tc.filter, got, tc.want)
		}
	}
	for tg, want := range map[watcher.Target]int{a: 5, b: 7} {
		got, err := publisher.LatestScan(ctx, js, "CVMWATCH_SCANS", "cvm", tg)
		if err != nil || got.Instances != want {
			t.Errorf("latest summary of %s: %d instances, %v; want %d", tg, got.Instances, err, want)
		}
	}
	if got, want := held(t, js, "CVMWATCH", ">"), 0; got != want {
		t.Errorf("event stream holds %d messages after summaries only, want %d", got, want)
	}
}
