package publisher_test

import (
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

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
			return p, publishertest.NewStreamsReader(js, publisher.DefaultStreamName, publisher.ScanStreamName(""))
		},
	})
}

// TestStreamReadyConformance runs the suite against the publisher the
// daemon uses (cmd/cvmwatch daemon.go): StreamReady with the default
// JetStream settings, on a server where nobody has set the stream up, so
// the wrapper's own set-up runs on the first publish.
func TestStreamReadyConformance(t *testing.T) {
	t.Parallel()
	publishertest.Run(t, publishertest.Harness{
		Prefix: "cvmtest",
		Dedups: true,
		New: func(t *testing.T) (watcher.Publisher, publishertest.Reader) {
			e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
			nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
			js := MustJetStream(t, nc, 5*time.Second)
			p, err := publisher.NewStreamReady(js, publisher.StreamConfig{Prefix: "cvmtest"}, publisher.JetStreamConfig{Prefix: "cvmtest"})
			if err != nil {
				t.Fatal(err)
			}
			return p, publishertest.NewStreamsReader(js, publisher.DefaultStreamName, publisher.ScanStreamName(""))
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
