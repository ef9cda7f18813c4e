package mempub_test

import (
	"context"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	publishertest.Run(t, publishertest.Harness{
		Dedups: true,
		New: func(t *testing.T) (watcher.Publisher, publishertest.Reader) {
			m := mempub.New()
			return m, publishertest.ReaderFunc(m.WaitMessages)
		},
	})
}

func TestFaults(t *testing.T) {
	ctx := t.Context()
	tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	events := publishertest.Events([]watcher.Target{tg}, 3, 10)

	t.Run("DownAcksNothing", func(t *testing.T) {
		m := mempub.New()
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
		m := mempub.New()
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
		m := mempub.New()
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
		m := mempub.New()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		go func() { _, _ = m.Publish(ctx, events) }()
		got, err := m.WaitFor(ctx, len(events))
		if err != nil || len(got) != len(events) {
			t.Fatalf("WaitFor = %d events, %v", len(got), err)
		}
	})

	t.Run("WaitForGivesUpWithContext", func(t *testing.T) {
		m := mempub.New()
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := m.WaitFor(ctx, 1); err == nil {
			t.Fatal("WaitFor on a canceled context: no error")
		}
	})
}
