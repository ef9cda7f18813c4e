package lease_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/lease"
)

// A replica whose registry write fails does not know the live set and
// must not act as if it were alone: it takes no lease, although every lease
// is free (the others' share, the moment theirs lapse). Found by the
// process-level HA test: after a NATS node's failover, a replica's
// registry write failed with "no response from stream", its Creates a
// moment later succeeded, and it took every target. Here the bucket's
// stream is made to hold only the lease keys, so the registry write fails
// the same way, at once, while Create works.
func TestReplicaThatCannotRegisterTakesNothing(t *testing.T) {
	const ttl = 6 * time.Second // a round's deadline, ttl/3, leaves room for the failing write's retries
	js := mustJetStream(t, embeddedURL(t))
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "KV_" + lease.DefaultBucket, Subjects: []string{"$KV." + lease.DefaultBucket + ".lease.>"},
		MaxAge: ttl, MaxMsgsPerSubject: 1, AllowDirect: true, AllowRollup: true, DenyDelete: true, Discard: jetstream.DiscardNew,
	}); err != nil {
		t.Fatal(err)
	}
	m, err := lease.New(t.Context(), js, lease.Config{Replica: "x", TTL: ttl,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m.SetTargets(targetsOf(3))
	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), ttl)
		m.Tick(ctx)
		cancel()
	}
	if got := m.Owned(); len(got) != 0 {
		t.Fatalf("a replica that could not register took %d leases: %v", len(got), got)
	}
}
