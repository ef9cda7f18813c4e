package lease_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// List shows every lease with its holder and since when, as the managers
// that took them know them, and the live replicas; a replica that released
// everything is gone from both.
func TestListShowsEveryHolder(t *testing.T) {
	js := mustJetStream(t, embeddedURL(t))
	if _, err := lease.List(t.Context(), js, ""); !errors.Is(err, lease.ErrNoBucket) {
		t.Fatalf("List before any replica ran: %v, want ErrNoBucket", err)
	}
	ts := targetsOf(5)
	var ms []*lease.Manager
	for _, id := range []string{"a", "b"} {
		m, err := lease.New(t.Context(), js, lease.Config{Replica: id, TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m.SetTargets(ts)
		ms = append(ms, m)
	}
	// a takes everything, b registers, a releases b's share, b takes it.
	for _, m := range []*lease.Manager{ms[0], ms[1], ms[0], ms[1]} {
		m.Tick(t.Context())
	}
	want := map[watcher.Target]lease.Lease{}
	holder := map[watcher.Target]string{}
	for i, m := range ms {
		owned := m.Owned()
		if len(owned) == 0 {
			t.Fatalf("replica %d holds nothing: this test proves nothing", i)
		}
		for _, l := range owned {
			want[l.Target], holder[l.Target] = l, []string{"a", "b"}[i]
		}
	}
	if len(want) != len(ts) {
		t.Fatalf("%d of %d targets held", len(want), len(ts))
	}
	got, err := lease.List(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.TTL != 10*time.Second {
		t.Errorf("TTL %v, want 10s", got.TTL)
	}
	if len(got.Leases) != len(ts) {
		t.Fatalf("listed %d leases, want %d: %+v", len(got.Leases), len(ts), got.Leases)
	}
	for _, h := range got.Leases {
		l, ok := want[h.Target]
		if !ok || h.Replica != holder[h.Target] || !h.Since.Equal(l.Since) {
			t.Errorf("listed %+v; the managers say %s holds it since %v", h, holder[h.Target], l.Since)
		}
		if h.Renewed.IsZero() || h.Renewed.Before(l.Since.Add(-time.Second)) {
			t.Errorf("%s renewed at %v, before it was taken (%v)", h.Target, h.Renewed, l.Since)
		}
	}
	if len(got.Replicas) != 2 || got.Replicas[0].Replica != "a" || got.Replicas[1].Replica != "b" {
		t.Errorf("live replicas %+v, want a and b", got.Replicas)
	}
	if h, ok := got.Owner(ts[0]); !ok || h.Replica != holder[ts[0]] {
		t.Errorf("Owner(%s) = %+v, %v", ts[0], h, ok)
	}

	ms[0].ReleaseAll(t.Context())
	got, err = lease.List(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range got.Leases {
		if h.Replica != "b" {
			t.Errorf("after a released everything, %s is listed as held by %s", h.Target, h.Replica)
		}
	}
	if len(got.Replicas) != 1 || got.Replicas[0].Replica != "b" {
		t.Errorf("after a left, live replicas %+v, want b", got.Replicas)
	}
}
