package publisher_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestCoreDisconnectedAcksNothing(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}, ReconnectWait: time.Hour})
	p, err := publisher.NewCore(nc, publisher.CoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	down := nc.StatusChanged(nats.RECONNECTING)
	e.Shutdown()
	select {
	case <-down:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not notice the shutdown")
	}
	acked, err := p.Publish(t.Context(), publishertest.Events([]watcher.Target{prod}, 2, 5))
	if acked != 0 || !errors.Is(err, nats.ErrDisconnected) {
		t.Fatalf("Publish while disconnected = %d, %v; want 0 and nats.ErrDisconnected", acked, err)
	}
}
