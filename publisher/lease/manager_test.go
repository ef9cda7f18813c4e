package lease_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestMain(m *testing.M) {
	code := m.Run()
	natstest.RemoveServerBinary()
	os.Exit(code)
}

const ttl = 2 * time.Second

func mustJetStream(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

func embeddedURL(tb testing.TB) string {
	e, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Shutdown)
	return e.ClientURL()
}

// replica is a Manager ticked every TTL/3 by the test until it is
// stopped; a stopped replica neither renews nor releases, as a killed or
// paused process would.
type replica struct {
	id     string
	m      *lease.Manager
	paused atomic.Bool
	mu     sync.Mutex
	log    []lease.Change
}

func startReplicas(t *testing.T, js jetstream.JetStream, targets []watcher.Target, replicas int, ids ...string) []*replica {
	t.Helper()
	var rs []*replica
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, id := range ids {
		m, err := lease.New(t.Context(), js, lease.Config{Replica: id, TTL: ttl, Replicas: replicas,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		m.SetTargets(targets)
		r := &replica{id: id, m: m}
		rs = append(rs, r)
		wg.Go(func() {
			for {
				select {
				case c := <-m.Changes():
					r.mu.Lock()
					r.log = append(r.log, c)
					r.mu.Unlock()
				case <-ctx.Done():
					return
				}
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				if !r.paused.Load() {
					m.Tick(ctx)
				}
				select {
				case <-ctx.Done():
				case <-time.After(ttl / 3):
				}
			}
		})
	}
	return rs
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p[:len(p)-1])); return len(p), nil }

func targetsOf(n int) []watcher.Target {
	ts := make([]watcher.Target, n)
	for i := range ts {
		ts[i] = watcher.Target{Account: "acct", Region: fmt.Sprintf("region-%d", i)}
	}
	return ts
}

// owners maps each target to the running replicas that count it valid.
func owners(rs []*replica) map[watcher.Target][]string {
	out := map[watcher.Target][]string{}
	for _, r := range rs {
		if r.paused.Load() {
			continue
		}
		for _, l := range r.m.Owned() {
			out[l.Target] = append(out[l.Target], r.id)
		}
	}
	return out
}

// waitStable waits until every target has exactly one running owner and
// none holds more than limit; the 60 s bound only keeps a broken build
// from hanging.
func waitStable(t *testing.T, rs []*replica, targets []watcher.Target, limit int) map[watcher.Target]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		own, load := owners(rs), map[string]int{}
		ok := len(own) == len(targets)
		single := map[watcher.Target]string{}
		for tg, ids := range own {
			ok = ok && len(ids) == 1
			load[ids[0]]++
			single[tg] = ids[0]
		}
		for _, n := range load {
			ok = ok && n <= limit
		}
		if ok {
			return single
		}
		if time.Now().After(deadline) {
			t.Fatalf("not stable after 60s: owners %v", own)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLeasesAreSpreadEvenly(t *testing.T) {
	js := mustJetStream(t, embeddedURL(t))
	ts := targetsOf(7)
	rs := startReplicas(t, js, ts, 1, "a", "b", "c")
	own := waitStable(t, rs, ts, 3) // ceil(7/3)
	if got := len(own); got != 7 {
		t.Fatalf("%d targets owned, want 7", got)
	}
}

// Kill (stop renewing) the replica with the most targets: its targets move
// to the survivors, and no successor's lease starts before the dead one's
// validity ended.
func testKilledReplicasTargetsMove(t *testing.T, js jetstream.JetStream, replicas int) {
	ts := targetsOf(7)
	rs := startReplicas(t, js, ts, replicas, "a", "b", "c")
	waitStable(t, rs, ts, 3)
	dead := rs[0]
	dying := dead.m.Owned()
	if len(dying) == 0 {
		t.Fatal("replica a holds nothing: this test proves nothing")
	}
	dead.paused.Store(true)
	killed := time.Now()
	own := waitStable(t, rs, ts, 4) // ceil(7/2)
	took := time.Since(killed)
	for _, l := range dying {
		var succ lease.Lease
		for _, r := range rs[1:] {
			if s, ok := r.m.Valid(l.Target); ok {
				succ = s
			}
		}
		if succ.Since.Before(l.ValidUntil) {
			t.Fatalf("%s taken by %s at %v, before a's lease stopped being valid at %v", l.Target, own[l.Target], succ.Since, l.ValidUntil)
		}
		if succ.Token <= l.Token {
			t.Fatalf("%s: successor's token %d not above the dead owner's %d", l.Target, succ.Token, l.Token)
		}
		if _, ok := dead.m.Valid(l.Target); ok {
			t.Fatalf("dead replica still counts %s valid", l.Target)
		}
	}
	t.Logf("%d targets taken over %v after the owner stopped renewing (TTL %v)", len(dying), took.Round(time.Millisecond), ttl)
}

func TestKilledReplicasTargetsMove(t *testing.T) {
	testKilledReplicasTargetsMove(t, mustJetStream(t, embeddedURL(t)), 1)
}

func TestKilledReplicasTargetsMoveCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	c := natstest.StartCluster(t, 3)
	testKilledReplicasTargetsMove(t, mustJetStream(t, c.URLs()), 3)
}

// A paused replica (SIGSTOP-like: no renewal) knows on waking, before any
// renewal, that its leases are no longer valid; its first round reports
// them lost, and afterwards it takes its share back without a second owner.
func TestPausedReplicaLearnsItLostBeforeWriting(t *testing.T) {
	js := mustJetStream(t, embeddedURL(t))
	ts := targetsOf(4)
	rs := startReplicas(t, js, ts, 1, "a", "b")
	waitStable(t, rs, ts, 2)
	a := rs[0]
	held := a.m.Owned()
	if len(held) == 0 {
		t.Fatal("replica a holds nothing: this test proves nothing")
	}
	a.paused.Store(true)
	waitStable(t, rs, ts, 4)
	// Still paused: nothing was renewed or reported, yet a knows.
	if got := a.m.Owned(); len(got) != 0 {
		t.Fatalf("paused replica counts %d leases valid after they were taken over", len(got))
	}
	for _, l := range held {
		if _, ok := a.m.Valid(l.Target); ok {
			t.Fatalf("paused replica counts %s valid", l.Target)
		}
	}
	a.paused.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		var lost []watcher.Target
		for _, c := range a.log {
			if !c.Gained && (c.Reason == "expired" || c.Reason == "taken") {
				lost = append(lost, c.Target)
			}
		}
		a.mu.Unlock()
		if len(lost) >= len(held) {
			for _, l := range held {
				if !slices.Contains(lost, l.Target) {
					t.Fatalf("lost %v, want every one of %v", lost, held)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed replica reported %v lost, want %d", lost, len(held))
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitStable(t, rs, ts, 2)
}
