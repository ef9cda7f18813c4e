package watcher_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// loop is a Watcher on the in-memory store and publisher (both pass the
// same conformance suites as bbolt and JetStream) over the simulator.
type loop struct {
	sim   *cvmsim.Server
	store *store.Memory
	pub   *mempub.Publisher
	w     *watcher.Watcher
}

func newLoop(t *testing.T, regions []string, secretKey string, interval time.Duration) *loop {
	t.Helper()
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: regions, InstancesPerRegion: 40, Seed: 11, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	l := &loop{sim: sim, store: store.NewMemory(), pub: mempub.New()}
	var sources []watcher.TargetSource
	for i, region := range regions {
		key := cvmsim.DefaultSecretKey
		if i == 0 && secretKey != "" {
			key = secretKey
		}
		client, err := cvm.NewClient(cvm.ClientConfig{Region: region, Endpoint: sim.URL(), Credential: common.NewCredential(cvmsim.DefaultSecretID, key)})
		if err != nil {
			t.Fatal(err)
		}
		tg := watcher.Target{Account: "acct", Region: region}
		s, err := cvm.NewScanner(cvm.ScannerConfig{Target: tg, Client: client, Limiter: cvm.NewLimiter(1000, 10), Logger: quiet,
			Retry: cvm.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, watcher.TargetSource{Target: tg, Source: s})
	}
	l.w, err = watcher.New(watcher.Config{Store: l.store, Publisher: l.pub, Interval: interval, Logger: quiet,
		RelayMaxBackoff: 20 * time.Millisecond, ShutdownDrain: 300 * time.Millisecond}, sources)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// runningIDs returns the IDs of the first n instances of region in state
// RUNNING; fewer is a fatal error.
func (l *loop) runningIDs(t *testing.T, region string, n int) []string {
	t.Helper()
	var ids []string
	for _, in := range l.sim.Instances(region) {
		if in.InstanceState == "RUNNING" && len(ids) < n {
			ids = append(ids, in.InstanceId)
		}
	}
	if len(ids) < n {
		t.Fatalf("%s has %d RUNNING instances, want %d", region, len(ids), n)
	}
	return ids
}

// stop sets the instances ids to STOPPED in the simulator.
func (l *loop) stop(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := l.sim.SetState(id, "STOPPED"); err != nil {
			t.Fatal(err)
		}
	}
}

// outboxDepth is the depth of tg's outbox.
func (l *loop) outboxDepth(t *testing.T, tg watcher.Target) int {
	t.Helper()
	depth, _, err := l.store.OutboxStats(t.Context(), tg)
	if err != nil {
		t.Fatalf("OutboxStats: %v", err)
	}
	return depth
}

func TestFailedCommitPublishesNothingAndKeepsTheSnapshot(t *testing.T) {
	l := newLoop(t, []string{"ap-guangzhou"}, "", time.Hour)
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	if _, err := l.w.ScanOnce(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	id := l.runningIDs(t, "ap-guangzhou", 1)[0]
	l.stop(t, id)

	l.store.FailNextCommit(errors.New("disk full"))
	if _, err := l.w.ScanOnce(t.Context(), tg); err == nil {
		t.Fatal("ScanOnce hid the failed commit")
	}
	if n, err := l.w.RelayOnce(t.Context(), tg); n != 0 || err != nil || len(l.pub.Events()) != 0 {
		t.Fatalf("relay after a failed commit = %d, %v; published %d events, want none", n, err, len(l.pub.Events()))
	}
	if r, ok := l.w.Snapshot(tg).Get(id); !ok || r.State != "RUNNING" {
		t.Fatalf("snapshot advanced past a failed commit: %+v (known %v)", r, ok)
	}

	c, err := l.w.ScanOnce(t.Context(), tg)
	if err != nil || len(c.Events) != 1 {
		t.Fatalf("retry after the failure: %d events, %v", len(c.Events), err)
	}
	if n, err := l.w.RelayOnce(t.Context(), tg); n != 1 || err != nil {
		t.Fatalf("relay = %d, %v", n, err)
	}
	if got := l.pub.Events(); len(got) != 1 || got[0].To != "STOPPED" || got[0].Sequence != 1 {
		t.Fatalf("published %+v, want one RUNNING -> STOPPED #1", got)
	}
}

func TestRelayResendsFromTheFirstUnacknowledged(t *testing.T) {
	l := newLoop(t, []string{"ap-guangzhou"}, "", time.Hour)
	tg := watcher.Target{Account: "acct", Region: "ap-guangzhou"}
	if _, err := l.w.ScanOnce(t.Context(), tg); err != nil {
		t.Fatalf("baseline ScanOnce: %v", err)
	}
	ids := l.runningIDs(t, "ap-guangzhou", 6)
	l.stop(t, ids...)
	c, err := l.w.ScanOnce(t.Context(), tg)
	if err != nil {
		t.Fatalf("ScanOnce: %v", err)
	}
	if got, want := len(c.Events), 6; got != want {
		t.Fatalf("scan committed %d events, want %d", got, want)
	}

	l.pub.FailAfter(2)
	if n, err := l.w.RelayOnce(t.Context(), tg); n != 2 || err == nil {
		t.Fatalf("relay = %d, %v; want 2 acked and an error", n, err)
	}
	if got, want := l.outboxDepth(t, tg), 4; got != want {
		t.Fatalf("outbox depth = %d after 2 of 6 acked, want %d", got, want)
	}
	if n, err := l.w.RelayOnce(t.Context(), tg); n != 4 || err != nil {
		t.Fatalf("second relay = %d, %v", n, err)
	}
	var got []string
	for _, e := range l.pub.Events() {
		got = append(got, e.InstanceID)
	}
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Fatalf("published %v, want each once in commit order %v", got, want)
	}
}

func TestRunKeepsTargetsIndependentAndDrainsOnShutdown(t *testing.T) {
	regions := []string{"ap-guangzhou", "ap-shanghai"}
	l := newLoop(t, regions, "wrong-key", 50*time.Millisecond) // ap-guangzhou cannot authenticate
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.w.Run(ctx) }()

	// Wait for the good target's baseline, then change it.
	deadline := time.Now().Add(10 * time.Second)
	for len(l.pub.Scans()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no scan summary from the healthy target")
		}
		time.Sleep(10 * time.Millisecond)
	}
	id := l.runningIDs(t, "ap-shanghai", 1)[0]
	l.stop(t, id)
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	got, err := l.pub.WaitFor(wctx, 1)
	if err != nil {
		t.Fatalf("healthy target's event never arrived while the other fails auth: %v", err)
	}
	if got[0].Target.Region != "ap-shanghai" || got[0].InstanceID != id {
		t.Fatalf("event = %+v", got[0])
	}
	for _, s := range l.pub.Scans() {
		if s.Target.Region == "ap-guangzhou" {
			t.Fatalf("target with bad credentials committed a scan: %+v", s)
		}
	}

	// Shutdown with the broker down: Run returns within the drain bound.
	// The first event leaves the outbox once published, so that an entry
	// found there next is the second change's.
	sh := watcher.Target{Account: "acct", Region: "ap-shanghai"}
	for deadline := time.Now().Add(10 * time.Second); l.outboxDepth(t, sh) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the published event never left the outbox")
		}
	}
	l.pub.SetDown(true)
	id2 := l.runningIDs(t, "ap-shanghai", 2)[1]
	l.stop(t, id2)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l.outboxDepth(t, sh) > 0 {
			break // the change is committed and cannot be published
		}
		if time.Now().After(deadline) {
			t.Fatal("the second change was never committed")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	// Whatever was not published is still in the outbox: nothing lost.
	depth := l.outboxDepth(t, sh)
	if depth != 1 || len(l.pub.Events()) != 1 {
		t.Fatalf("after shutdown: %d published + %d in the outbox, want the 2 events kept", len(l.pub.Events()), depth)
	}
}

func TestPerTargetIntervalOverridesTheDefault(t *testing.T) {
	w, err := watcher.New(watcher.Config{Store: store.NewMemory(), Publisher: mempub.New(), Interval: time.Hour, Logger: quiet},
		[]watcher.TargetSource{
			{Target: watcher.Target{Account: "a", Region: "r1"}},
			{Target: watcher.Target{Account: "a", Region: "r2"}, Interval: 5 * time.Second},
		})
	if err != nil {
		t.Fatal(err)
	}
	st := w.Status()
	if got, want := len(st), 2; got != want {
		t.Fatalf("status lists %d targets, want %d", got, want)
	}
	if st[0].Interval != time.Hour || st[1].Interval != 5*time.Second {
		t.Fatalf("intervals = %v, %v; want 1h and 5s", st[0].Interval, st[1].Interval)
	}
	if err := w.AddTarget(watcher.TargetSource{Target: watcher.Target{Account: "a", Region: "r1"}}); err == nil {
		t.Fatal("a target added twice")
	}
	if err := w.AddTarget(watcher.TargetSource{Target: watcher.Target{Account: "a.b", Region: "r3"}}); err == nil {
		t.Fatal("an account that is not a subject token was accepted")
	}
}
