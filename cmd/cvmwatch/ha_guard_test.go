package main

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A replica whose lease lapsed by its own clock (no renewal for longer than
// lease_ttl minus the margin, as after a pause) neither writes the target's
// store nor hands its events to the server, before anything tells it the
// lease is gone; reads still work.
func TestHAWritesNeedALeaseValidByTheReplicasClock(t *testing.T) {
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	clock := &testClock{now: time.Now()}
	const ttl = 10 * time.Second // the server keeps the lease; only the replica's clock moves
	m, err := lease.New(t.Context(), f.js, lease.Config{Replica: "a", TTL: ttl, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	m.SetTargets([]watcher.Target{tg})
	m.Tick(t.Context())
	l, ok := m.Valid(tg)
	if !ok {
		t.Fatal("the lease was not taken")
	}
	h := &haRunner{replica: "a", prefix: "cvm", leases: m, held: map[watcher.Target]heldTarget{tg: {Lease: l, epoch: 7}}}
	mem := store.NewMemory()
	g := leaseGuard{Store: mem, valid: h.leaseValid}
	at := clock.Now().UTC()
	ev := func(id string) watcher.Event {
		return watcher.Event{ID: watcher.EventID(tg, id, 1, "RUNNING", "STOPPED"), Target: tg, InstanceID: id,
			From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: at, PreviousObservedAt: at}
	}
	subject := "cvm.state.prod.ap-guangzhou.ins-1.RUNNING.STOPPED"

	// Valid: everything goes through.
	if _, _, err := g.Commit(t.Context(), tg, watcher.Commit{Events: []watcher.Event{ev("ins-1"), ev("ins-2")}}); err != nil {
		t.Fatalf("commit while the lease is valid: %v", err)
	}
	if err := g.Acknowledge(t.Context(), tg, 1); err != nil {
		t.Fatalf("acknowledge while the lease is valid: %v", err)
	}
	if _, seq, ok := h.fence(subject); !ok || seq != 7 {
		t.Fatalf("fence while the lease is valid = %d, %v; want 7, true", seq, ok)
	}

	// No renewal for lease_ttl minus the margin (ttl/5): lapsed, though the
	// server still holds the lease for this replica.
	clock.Add(ttl - ttl/5)
	if _, ok := m.Valid(tg); ok {
		t.Fatal("the lease is still valid after lease_ttl minus the margin without renewal")
	}
	if _, _, err := g.Commit(t.Context(), tg, watcher.Commit{Events: []watcher.Event{ev("ins-3")}}); !errors.Is(err, errLeaseLapsed) {
		t.Fatalf("commit after the lease lapsed: %v, want errLeaseLapsed", err)
	} else if errors.Is(err, watcher.ErrReload) {
		t.Fatalf("commit after the lease lapsed asks for a reload, though nothing was written: %v", err)
	}
	if err := g.Acknowledge(t.Context(), tg, 2); !errors.Is(err, errLeaseLapsed) {
		t.Fatalf("acknowledge after the lease lapsed: %v, want errLeaseLapsed", err)
	}
	if err := g.PutEnrichments(t.Context(), tg, []watcher.Enrichment{{InstanceID: "ins-1", State: "STOPPED", FetchedAt: at}}); !errors.Is(err, errLeaseLapsed) {
		t.Fatalf("put enrichments after the lease lapsed: %v, want errLeaseLapsed", err)
	}
	if _, err := g.ResolveAttributions(t.Context(), tg, nil, []string{ev("ins-1").ID}); !errors.Is(err, errLeaseLapsed) {
		t.Fatalf("resolve attributions after the lease lapsed: %v, want errLeaseLapsed", err)
	}
	if _, _, ok := h.fence(subject); ok {
		t.Fatal("fence after the lease lapsed still lets the event go to the server")
	}
	// Nothing reached the store: one entry left (ins-2), no ins-3; reads work.
	entries, err := g.Outbox(t.Context(), tg, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), 1; got != want || entries[0].Event.InstanceID != "ins-2" {
		t.Fatalf("outbox after the refused writes = %+v, want only ins-2", entries)
	}
	if es, err := mem.Enrichments(t.Context(), tg, []string{"ins-1"}); err != nil || len(es) != 0 {
		t.Fatalf("enrichments after the refused write = %v, %v; want none", es, err)
	}
}
