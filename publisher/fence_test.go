package publisher_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// A replica that lost its target (another claimed the epoch) cannot store
// an event conflicting with the new owner's: same instance and sequence,
// other content.
func TestFencedPublisherIsRefusedOnceAnotherClaimsTheEpoch(t *testing.T) {
	js, tgt, epoch := epochStream(t)
	claim := func(replica string, token uint64) *publisher.JetStream {
		seq, err := publisher.ClaimEpoch(t.Context(), js, epoch, replica, token)
		if err != nil {
			t.Fatal(err)
		}
		return MustNewJetStream(t, publisher.Fenced(js, func(string) (string, uint64, bool) { return epoch, seq, true }), publisher.JetStreamConfig{})
	}
	ev := func(to watcher.State) watcher.Event {
		return watcher.Event{ID: watcher.EventID(tgt, "ins-1", 2, watcher.StateRunning, to), Target: tgt, InstanceID: "ins-1",
			From: watcher.StateRunning, To: to, Sequence: 2, ObservedAt: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	}
	old := claim("a", 1)
	if n, err := old.Publish(t.Context(), []watcher.Event{ev(watcher.StateStopping)}); n != 1 || err != nil {
		t.Fatalf("owner's publish = %d, %v", n, err)
	}
	next := claim("b", 2)
	n, err := old.Publish(t.Context(), []watcher.Event{ev(watcher.StateStopped)})
	var apiErr *jetstream.APIError
	if n != 0 || !errors.As(err, &apiErr) {
		t.Fatalf("stale owner's publish = %d, %v; want 0 and the server's refusal", n, err)
	}
	if n, err := next.Publish(t.Context(), []watcher.Event{ev(watcher.StateStopped)}); n != 1 || err != nil {
		t.Fatalf("new owner's publish = %d, %v", n, err)
	}
	st, err := js.Stream(t.Context(), publisher.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.CachedInfo().State.Msgs, uint64(4); got != want { // 2 epochs, 2 events
		t.Fatalf("stream holds %d messages, want %d", got, want)
	}
	none := MustNewJetStream(t, publisher.Fenced(js, func(string) (string, uint64, bool) { return "", 0, false }), publisher.JetStreamConfig{})
	if _, err := none.Publish(t.Context(), []watcher.Event{ev(watcher.StateStopped)}); !errors.Is(err, publisher.ErrNoEpoch) {
		t.Fatalf("publish without an epoch = %v, want ErrNoEpoch", err)
	}
}

// TestClaimsAreOrderedByLeaseToken: a claim made with an older lease token
// than the one holding the epoch (a replica that lost the lease before its
// slow claim went out, found by the HA process test after a NATS node
// kill) is refused and fences nobody; the owner keeps publishing. A claim
// retried after an unknown outcome gets its own sequence back; a later
// token claims anew.
func TestClaimsAreOrderedByLeaseToken(t *testing.T) {
	js, tgt, epoch := epochStream(t)
	owner, err := publisher.ClaimEpoch(t.Context(), js, epoch, "r3", 300)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.ClaimEpoch(t.Context(), js, epoch, "r1", 285); !errors.Is(err, publisher.ErrStaleClaim) {
		t.Fatalf("claim with an older token = %v, want ErrStaleClaim", err)
	}
	pub := MustNewJetStream(t, publisher.Fenced(js, func(string) (string, uint64, bool) { return epoch, owner, true }), publisher.JetStreamConfig{})
	ev := watcher.Event{ID: watcher.EventID(tgt, "ins-1", 1, watcher.Absent, watcher.StateRunning), Target: tgt, InstanceID: "ins-1",
		From: watcher.Absent, To: watcher.StateRunning, Sequence: 1, ObservedAt: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)}
	if n, err := pub.Publish(t.Context(), []watcher.Event{ev}); n != 1 || err != nil {
		t.Fatalf("owner's publish after a stale claim = %d, %v; want 1 (not fenced)", n, err)
	}
	if again, err := publisher.ClaimEpoch(t.Context(), js, epoch, "r3", 300); err != nil || again != owner {
		t.Fatalf("the owner's claim retried = %d, %v; want its sequence %d", again, err, owner)
	}
	later, err := publisher.ClaimEpoch(t.Context(), js, epoch, "r1", 310)
	if err != nil || later <= owner {
		t.Fatalf("claim with a later token = %d, %v; want a new epoch after %d", later, err, owner)
	}
}

// epochStream starts an embedded server with the event stream and its epoch
// subjects, and returns the JetStream context, a target and its epoch
// subject.
func epochStream(t *testing.T) (jetstream.JetStream, watcher.Target, string) {
	t.Helper()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	js := MustJetStream(t, MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}}), 5*time.Second)
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{Epochs: true}); err != nil {
		t.Fatal(err)
	}
	return js, watcher.Target{Account: "prod", Region: "ap-guangzhou"}, publisher.EpochSubject("cvm", "prod", "ap-guangzhou")
}
