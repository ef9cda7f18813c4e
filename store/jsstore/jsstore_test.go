package jsstore_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/store/jsstore"
	"github.com/cvmwatch/cvmwatch/store/storetest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestMain(m *testing.M) {
	code := m.Run()
	natstest.RemoveServerBinary()
	os.Exit(code)
}

// MustStartEmbedded starts an embedded JetStream server (fsync on every
// write, as the product runs it) for the test.
func MustStartEmbedded(tb testing.TB) string {
	tb.Helper()
	e, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: tb.TempDir(), SyncAlways: true})
	if err != nil {
		tb.Fatalf("StartEmbedded: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	return e.ClientURL()
}

// MustJetStream connects to url (several, comma-separated, for a cluster)
// and closes the connection with the test.
func MustJetStream(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

var streams atomic.Int64

// freshOptions names a stream and prefix no other store of the test
// process uses.
func freshOptions(replicas int) jsstore.Options {
	n := streams.Add(1)
	return jsstore.Options{Stream: fmt.Sprintf("STATE_%d", n), Prefix: fmt.Sprintf("state%d", n), Replicas: replicas, CompactEvery: 3}
}

func MustOpen(tb testing.TB, js jetstream.JetStream, o jsstore.Options) *jsstore.Store {
	tb.Helper()
	s, err := jsstore.Open(tb.Context(), js, o)
	if err != nil {
		tb.Fatalf("Open(%+v) = %v", o, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// harness opens each store on a stream of its own; Reopen opens a new
// Store on the same stream, as a restarted or another replica would.
// CompactEvery is 3, so the suite's longer tests read journals that were
// compacted and purged; small parts (4 KiB) make its larger commits span
// several messages.
func harness(js jetstream.JetStream, replicas int) storetest.Harness {
	opts := map[watcher.Store]jsstore.Options{}
	open := func(t *testing.T, o jsstore.Options) watcher.Store {
		s := MustOpen(t, js, o)
		s.SetMaxPart(4096)
		opts[s] = o
		return s
	}
	return storetest.Harness{
		Open: func(t *testing.T) watcher.Store { return open(t, freshOptions(replicas)) },
		Reopen: func(t *testing.T, s watcher.Store) watcher.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			return open(t, opts[s])
		},
	}
}

func TestConformanceEmbedded(t *testing.T) {
	storetest.Run(t, harness(MustJetStream(t, MustStartEmbedded(t)), 1))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	c := natstest.StartCluster(t, 3)
	storetest.Run(t, harness(MustJetStream(t, c.URLs()), 3))
}
