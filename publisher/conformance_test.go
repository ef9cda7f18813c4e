package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	publishertest.Run(t, publishertest.Harness{
		Dedups: true,
		New: func(t *testing.T) (watcher.Publisher, publishertest.Reader) {
			m := publisher.NewMemory()
			return m, publishertest.ReaderFunc(m.WaitMessages)
		},
	})
}

func TestJetStreamConformance(t *testing.T) {
	t.Parallel()
	publishertest.Run(t, publishertest.Harness{
		Prefix: "cvmtest",
		Dedups: true,
		New: func(t *testing.T) (watcher.Publisher, publishertest.Reader) {
			e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
			nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
			js := MustJetStream(t, nc, 5*time.Second)
			if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{Prefix: "cvmtest"}); err != nil {
				t.Fatal(err)
			}
			// A small window, so that the suite's batches exceed it.
			p, err := publisher.NewJetStream(js, publisher.JetStreamConfig{Prefix: "cvmtest", Window: 16})
			if err != nil {
				t.Fatal(err)
			}
			return p, publishertest.NewStreamReader(js, publisher.DefaultStreamName)
		},
	})
}

func TestCoreConformance(t *testing.T) {
	t.Parallel()
	publishertest.Run(t, publishertest.Harness{
		Dedups: false,
		New: func(t *testing.T) (watcher.Publisher, publishertest.Reader) {
			e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
			nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
			// Everything, not just the prefix: a raw unsafe subject would show.
			r := publishertest.NewSubscriptionReader(t, MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}}), ">")
			p, err := publisher.NewCore(nc, publisher.CoreConfig{})
			if err != nil {
				t.Fatal(err)
			}
			return p, r
		},
	})
}

func TestMemoryFaults(t *testing.T) {
	ctx := t.Context()
	tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	events := publishertest.Events([]watcher.Target{tg}, 3, 10)

	t.Run("DownAcksNothing", func(t *testing.T) {
		m := publisher.NewMemory()
		m.SetDown(true)
		if acked, err := m.Publish(ctx, events); acked != 0 || err == nil {
			t.Fatalf("Publish while down = %d, %v; want 0 and an error", acked, err)
		}
		if err := m.PublishScan(ctx, watcher.ScanSummary{Target: tg}); err == nil {
			t.Fatal("PublishScan while down: no error")
		}
		m.SetDown(false)
		if acked, err := m.Publish(ctx, events); acked != len(events) || err != nil {
			t.Fatalf("Publish after down = %d, %v", acked, err)
		}
	})

	t.Run("FailAfterStoresPrefixOnce", func(t *testing.T) {
		m := publisher.NewMemory()
		m.FailAfter(4)
		if acked, err := m.Publish(ctx, events); acked != 4 || err == nil {
			t.Fatalf("Publish = %d, %v; want 4 and an error", acked, err)
		}
		if got := len(m.Events()); got != 4 {
			t.Fatalf("stored %d events, want 4", got)
		}
		if acked, err := m.Publish(ctx, events[4:]); acked != 6 || err != nil {
			t.Fatalf("re-send = %d, %v; want 6, nil", acked, err)
		}
		if got := m.Events(); len(got) != len(events) || got[9].ID != events[9].ID {
			t.Fatalf("stored %d events, want %d in order", len(got), len(events))
		}
	})

	t.Run("DropAcksStoresAllAndDedups", func(t *testing.T) {
		m := publisher.NewMemory()
		m.DropAcksAfter(2)
		if acked, err := m.Publish(ctx, events); acked != 2 || err == nil {
			t.Fatalf("Publish = %d, %v; want 2 and an error", acked, err)
		}
		if acked, err := m.Publish(ctx, events[2:]); acked != 8 || err != nil {
			t.Fatalf("re-send = %d, %v; want 8, nil", acked, err)
		}
		if got := len(m.Events()); got != len(events) {
			t.Fatalf("stored %d events, want %d (re-sent ones dropped)", got, len(events))
		}
	})

	t.Run("WaitForWakesUp", func(t *testing.T) {
		m := publisher.NewMemory()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		go func() { _, _ = m.Publish(ctx, events) }()
		got, err := m.WaitFor(ctx, len(events))
		if err != nil || len(got) != len(events) {
			t.Fatalf("WaitFor = %d events, %v", len(got), err)
		}
	})

	t.Run("WaitForGivesUpWithContext", func(t *testing.T) {
		m := publisher.NewMemory()
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := m.WaitFor(ctx, 1); err == nil {
			t.Fatal("WaitFor on a canceled context: no error")
		}
	})
}
