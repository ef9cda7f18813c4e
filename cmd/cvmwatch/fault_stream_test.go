package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// Faults of the JetStream stream itself: deleted under the daemon, and the
// server's storage full.

// TestFaultStreamDeletedAndRecreated: the stream is deleted while the
// daemon runs (by an operator, or a server that lost its store). Publishing
// fails (loudly), the outbox keeps every event, the daemon sets the stream
// up again by itself, and the events committed meanwhile arrive, once each
// and in order.
func TestFaultStreamDeletedAndRecreated(t *testing.T) {
	t.Parallel()
	r := newRig(t, 100, nil)
	r.start()
	r.waitBaseline()
	r.change(2)
	r.converge(30 * time.Second)

	nc, err := nats.Connect(r.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "CVMWATCH"); err != nil {
		t.Fatal(err)
	}
	changed := r.change(4) // two flip back, two more
	r.waitLog("nats stream gone", 30*time.Second)
	if r.d.exited() {
		t.Fatalf("the daemon exited when its stream vanished: %v", r.d.err)
	}
	var got []oracle.Message
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("recreated stream has %d of the 4 events; log: %s", len(got), keepLog(r.log))
		}
		time.Sleep(200 * time.Millisecond)
		if got, err = readStream(t.Context(), r.nats.URL()); err != nil {
			t.Fatal(err)
		}
	}
	// The old chain is gone with the old stream; what remains must be the
	// events of the changed instances, each once, continuing their chains.
	rep := oracle.Check(got, nil, oracle.Options{BaselineStart: r.bs, BaselineEnd: r.be})
	var ids []string
	for _, v := range rep.Violations {
		if v.Kind != "chain" || !strings.Contains(v.Detail, "first event has sequence") {
			t.Errorf("violation: %s", v)
		}
	}
	for _, m := range got {
		parts := strings.Split(m.Subject, ".")
		ids = append(ids, parts[4])
	}
	slices.Sort(ids)
	want := slices.Clone(changed)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("recreated stream holds events of %v, want one each of %v", ids, want)
	}
}

// TestFaultNATSStorageFull: the server's JetStream storage fills up in the
// middle of a burst. Publishing fails, the daemon keeps running and keeps
// the events in its outbox; with storage back, every event arrives once.
func TestFaultNATSStorageFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	small := filepath.Join(dir, "small.conf")
	if err := os.WriteFile(small, []byte("jetstream {\n  max_file_store: 100KB\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, 600, func(c *daemonConfig) { c.Announce = true }, "-c", small)
	r.start()
	r.waitLog("relay: publish failed", 30*time.Second)
	if r.d.exited() {
		t.Fatalf("the daemon exited on full storage: %v", r.d.err)
	}
	if !strings.Contains(r.log.String(), "insufficient resources") {
		t.Fatalf("publishing failed, but not for want of storage: %s", keepLog(r.log))
	}
	// Storage back: the same store directory, no limit.
	r.nats.Stop()
	r.nats.SetFlags()
	r.nats.Start()
	rep := r.converge(60 * time.Second)
	if rep.Events != 600 {
		t.Fatalf("events = %d, want the 600 appearances:\n%s", rep.Events, rep)
	}
}
