package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// harness runs the product's own wiring (openDaemon: bbolt store, NATS
// connection, JetStream stream, official SDK scanners) against a simulator
// and a NATS server that the test owns, so it can stop and restart both.
type harness struct {
	t        *testing.T
	sim      *cvmsim.Server
	nats     *publisher.Embedded
	natsPort int
	natsDir  string
	cfg      *Config
	d        *daemon
	target   watcher.Target
}

func newHarness(t *testing.T, instances int) *harness {
	t.Helper()
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: instances, Seed: 7, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return newHarnessFor(t, sim, sim.URL())
}

// newHarnessFor wires a daemon to a separate NATS server and to endpoint,
// which is sim itself or a gateway in front of it. Every listener is on an
// ephemeral loopback port: tests run in parallel, and a fixed port (such as
// the default http.listen) collides with another test or with whatever the
// machine already runs.
func newHarnessFor(t *testing.T, sim *cvmsim.Server, endpoint string) *harness {
	t.Helper()
	return newHarnessWith(t, sim, endpoint, nil)
}

// newHarnessWith is newHarnessFor with tune, if not nil, changing the
// config before its defaults are applied.
func newHarnessWith(t *testing.T, sim *cvmsim.Server, endpoint string, tune func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, sim: sim, natsDir: t.TempDir(), target: watcher.Target{Account: "prod", Region: "ap-guangzhou"}}
	h.startNATS()
	t.Cleanup(h.stopNATS)
	h.cfg = &Config{
		DataDir: t.TempDir(),
		Accounts: []AccountConfig{{
			Name: "prod", Regions: []string{"ap-guangzhou"}, Endpoint: endpoint,
			Credentials: &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey},
		}},
		Poll: PollConfig{Interval: Duration(time.Hour)},
		NATS: NATSConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort)},
		HTTP: HTTPConfig{Listen: "127.0.0.1:0"},
	}
	if tune != nil {
		tune(h.cfg)
	}
	h.cfg.applyDefaults()
	if errs := h.cfg.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) startNATS() {
	h.t.Helper()
	// The port is chosen below the ephemeral range, so that while the
	// server is down for an outage no port-0 listener can take it; a
	// restart reuses it, as a real server's address does not change. On
	// the first start a port taken meanwhile is replaced by another.
	first := h.natsPort == 0
	for attempt := 0; ; attempt++ {
		if first {
			h.natsPort = publishertest.RestartablePort(h.t)
		}
		var err error
		h.nats, err = publisher.StartEmbedded(publisher.EmbeddedConfig{Port: h.natsPort, StoreDir: h.natsDir})
		if err == nil {
			return
		}
		if !first || attempt == 5 {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) stopNATS() {
	if h.nats != nil {
		h.nats.Shutdown()
		h.nats = nil
	}
}

// open wires the daemon as `cvmwatch run` does; close is its shutdown.
func (h *harness) open() {
	h.t.Helper()
	d, err := openDaemon(h.t.Context(), h.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatalf("openDaemon: %v", err)
	}
	h.d = d
}

func (h *harness) close() {
	if h.d != nil {
		h.d.Close()
		h.d = nil
	}
}

// scan runs one cycle of the loop; relay drains the outbox.
func (h *harness) scan() watcher.Commit {
	h.t.Helper()
	c, err := h.d.watcher.ScanOnce(h.t.Context(), h.target)
	if err != nil && !errors.Is(err, watcher.ErrIncomplete) {
		h.t.Fatalf("ScanOnce: %v", err)
	}
	return c
}

func (h *harness) relay() error {
	for {
		n, err := h.d.watcher.RelayOnce(h.t.Context(), h.target)
		if err != nil || n == 0 {
			return err
		}
	}
}

func (h *harness) scanAndRelay() watcher.Commit {
	h.t.Helper()
	c := h.scan()
	if err := h.relay(); err != nil {
		h.t.Fatalf("relay: %v", err)
	}
	return c
}

// streamed reads every state event stored in the stream (no follow-up or
// operation event), in stream order,
// each checked as streamedAll checks it.
func (h *harness) streamed() []watcher.Event {
	h.t.Helper()
	var out []watcher.Event
	for _, e := range h.streamedAll() {
		if e.Completes == "" && !e.IsOperation() {
			out = append(out, e)
		}
	}
	return out
}

func summary(events []watcher.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s->%s #%d", e.InstanceID, e.From, e.To, e.Sequence))
	}
	return out
}

// checkChains verifies the per-instance guarantees over a whole stream:
// contiguous sequences from 1, each from equal to the previous to, and no
// event id stored twice.
func checkChains(t *testing.T, events []watcher.Event) {
	t.Helper()
	last := map[string]watcher.Event{}
	ids := map[string]bool{}
	for _, e := range events {
		if ids[e.ID] {
			t.Errorf("event %s stored twice", e.ID)
		}
		ids[e.ID] = true
		prev, ok := last[e.InstanceID]
		switch {
		case !ok && e.Sequence != 1:
			t.Errorf("%s starts at sequence %d", e.InstanceID, e.Sequence)
		case ok && e.Sequence != prev.Sequence+1:
			t.Errorf("%s sequence %d after %d", e.InstanceID, e.Sequence, prev.Sequence)
		case ok && e.From != prev.To:
			t.Errorf("%s event from %s after an event to %s", e.InstanceID, e.From, prev.To)
		}
		last[e.InstanceID] = e
	}
}

// setState sets an instance's state in the simulator.
func (h *harness) setState(id, state string) {
	h.t.Helper()
	if err := h.sim.SetState(id, state); err != nil {
		h.t.Fatal(err)
	}
}

// running returns the IDs of the first n instances in state RUNNING.
func (h *harness) running(n int) []string {
	h.t.Helper()
	var ids []string
	for _, in := range h.sim.Instances("ap-guangzhou") {
		if in.InstanceState == "RUNNING" && len(ids) < n {
			ids = append(ids, in.InstanceId)
		}
	}
	if len(ids) < n {
		h.t.Fatalf("only %d RUNNING instances, want %d", len(ids), n)
	}
	return ids
}

func TestE2EBaselineIsSilent(t *testing.T) {
	h := newHarness(t, 120)
	c := h.scanAndRelay()
	if len(c.Events) != 0 {
		t.Fatalf("baseline committed %d events", len(c.Events))
	}
	if got := h.streamed(); len(got) != 0 {
		t.Fatalf("baseline published %v", summary(got))
	}
	if !c.Meta.Baselined {
		t.Fatal("target not baselined after a complete scan")
	}
}

func TestE2EStopGivesExactlyOneEvent(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()
	id := h.running(1)[0]
	before := time.Now()
	if err := h.sim.SetState(id, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	h.scanAndRelay()
	h.scanAndRelay() // a second scan adds nothing
	got := h.streamed()
	if want := []string{id + " RUNNING->STOPPED #1"}; !slices.Equal(summary(got), want) {
		t.Fatalf("stream = %v, want %v", summary(got), want)
	}
	e := got[0]
	if e.Target != h.target || e.ID != watcher.EventID(h.target, id, 1, "RUNNING", "STOPPED") {
		t.Errorf("event identity wrong: %+v", e)
	}
	if e.PreviousObservedAt.After(before) || e.ObservedAt.Before(before) {
		t.Errorf("window [%v, %v] does not contain the change at %v", e.PreviousObservedAt, e.ObservedAt, before)
	}
}

func TestE2ECreateAndConfirmedRelease(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()
	created := h.sim.NewInstanceID()
	if err := h.sim.Create("ap-guangzhou", created, "PENDING"); err != nil {
		t.Fatal(err)
	}
	released := h.running(1)[0]
	if err := h.sim.Release(released); err != nil {
		t.Fatal(err)
	}
	h.scanAndRelay()
	if got, want := summary(h.streamed()), []string{created + " ABSENT->PENDING #1"}; !slices.Equal(got, want) {
		t.Fatalf("after one scan: %v, want %v (a release needs confirmation)", got, want)
	}
	h.scanAndRelay()
	got := summary(h.streamed())
	if want := []string{created + " ABSENT->PENDING #1", released + " RUNNING->ABSENT #1"}; !slices.Equal(got, want) {
		t.Fatalf("after two scans: %v, want %v", got, want)
	}
}

func TestE2EFailingPageGivesNoFalseAbsent(t *testing.T) {
	h := newHarness(t, 350)
	h.scanAndRelay()
	h.sim.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Offset: intp(200)})
	// As many scans as confirm_scans: were the failure taken for absence,
	// the last one would declare the instances of the failing page gone.
	for range h.cfg.Events.ConfirmScans {
		if c := h.scanAndRelay(); len(c.Events) != 0 {
			t.Fatalf("scans with a failing page committed %d events", len(c.Events))
		}
	}
	if got := h.streamed(); len(got) != 0 {
		t.Fatalf("failing page published %v", summary(got))
	}
}

func intp(i int) *int { return &i }

func TestE2ERestartPublishesWhatChangedWhileDown(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()
	ids := h.running(2)
	a, b := ids[0], ids[1]
	h.setState(a, "STOPPED")
	h.scanAndRelay()
	h.close()

	h.setState(a, "RUNNING")
	h.setState(b, "STOPPED")
	h.open()
	h.scanAndRelay()
	got := summary(h.streamed())
	want := []string{a + " RUNNING->STOPPED #1", a + " STOPPED->RUNNING #2", b + " RUNNING->STOPPED #1"}
	if len(got) != len(want) {
		t.Fatalf("stream = %v, want %v", got, want)
	}
	slices.Sort(got[1:])
	slices.Sort(want[1:])
	if !slices.Equal(got, want) {
		t.Fatalf("stream = %v, want %v", got, want)
	}
	checkChains(t, h.streamed())
}

func TestE2ENATSOutageOutboxGrowsThenDrainsInOrder(t *testing.T) {
	h := newHarness(t, 200)
	h.scanAndRelay()
	h.stopNATS()

	ids := h.running(5)
	for round := range 3 {
		for _, id := range ids {
			h.setState(id, []string{"STOPPING", "STOPPED", "STARTING"}[round])
		}
		if c := h.scan(); len(c.Events) != 5 {
			t.Fatalf("round %d: committed %d events while NATS is down, want 5", round, len(c.Events))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		if n, err := h.d.watcher.RelayOnce(ctx, h.target); err == nil || n != 0 {
			t.Fatalf("relay with NATS down published %d, err %v", n, err)
		}
		cancel()
	}
	depth, _, err := h.d.store.OutboxStats(t.Context(), h.target)
	if err != nil || depth != 15 {
		t.Fatalf("outbox depth = %d (%v), want 15", depth, err)
	}

	h.startNATS()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := h.relay()
		var serr error
		if depth, _, serr = h.d.store.OutboxStats(t.Context(), h.target); serr != nil {
			t.Fatalf("OutboxStats: %v", serr)
		}
		if depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained after NATS came back: depth %d, last error %v", depth, err)
		}
		time.Sleep(100 * time.Millisecond) // waiting for the client to reconnect
	}
	got := h.streamed()
	if len(got) != 15 {
		t.Fatalf("stream has %d events, want 15: %v", len(got), summary(got))
	}
	checkChains(t, got)
}

func TestE2ECrashPointsLoseNothingAndDuplicateNothing(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()

	ids := h.running(4)
	// Crash after commit, before any publish: the outbox holds the events.
	a := ids[0]
	h.setState(a, "STOPPED")
	if c := h.scan(); len(c.Events) != 1 {
		t.Fatalf("committed %d events", len(c.Events))
	}
	h.close() // the process dies here
	h.open()
	h.scanAndRelay()

	// Crash after publish, before the outbox is acknowledged: the relay
	// re-publishes on restart and JetStream drops the duplicate.
	b := ids[1]
	h.setState(b, "STOPPED")
	if c := h.scan(); len(c.Events) != 1 {
		t.Fatalf("committed %d events, want 1", len(c.Events))
	}
	entries, err := h.d.store.Outbox(t.Context(), h.target, 0, 100)
	if err != nil || len(entries) != 1 {
		t.Fatalf("outbox = %d entries (%v), want 1", len(entries), err)
	}
	pub, err := h.d.publisher(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := pub.Publish(t.Context(), []watcher.Event{entries[0].Event}); n != 1 || err != nil {
		t.Fatalf("publish = %d, %v", n, err)
	}
	h.close() // dies before Acknowledge
	h.open()
	h.scanAndRelay()

	// Crash mid-acknowledgement: two events published, only the first acked.
	c1, c2 := ids[2], ids[3]
	h.setState(c1, "STOPPED")
	h.setState(c2, "STOPPED")
	if c := h.scan(); len(c.Events) != 2 {
		t.Fatalf("committed %d events, want 2", len(c.Events))
	}
	if entries, err = h.d.store.Outbox(t.Context(), h.target, 0, 100); err != nil || len(entries) != 2 {
		t.Fatalf("outbox = %d entries (%v), want 2", len(entries), err)
	}
	if pub, err = h.d.publisher(t.Context()); err != nil {
		t.Fatal(err)
	}
	var evs []watcher.Event
	for _, e := range entries {
		evs = append(evs, e.Event)
	}
	if n, err := pub.Publish(t.Context(), evs); n != 2 || err != nil {
		t.Fatalf("publish = %d, %v", n, err)
	}
	if err := h.d.store.Acknowledge(t.Context(), h.target, entries[0].Seq); err != nil {
		t.Fatal(err)
	}
	h.close()
	h.open()
	h.scanAndRelay()

	got := h.streamed()
	want := []string{a + " RUNNING->STOPPED #1", b + " RUNNING->STOPPED #1", c1 + " RUNNING->STOPPED #1", c2 + " RUNNING->STOPPED #1"}
	slices.Sort(want[2:])
	if !slices.Equal(summary(got), want) {
		t.Fatalf("stream = %v, want %v", summary(got), want)
	}
	checkChains(t, got)
}

func TestE2ESecondProcessOnDataDirIsRefused(t *testing.T) {
	h := newHarness(t, 10)
	start := time.Now()
	_, err := openDaemon(t.Context(), h.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("a second daemon opened the same data dir")
	}
	if !strings.Contains(err.Error(), filepath.Join(h.cfg.DataDir, "cvmwatch.db")) {
		t.Errorf("error does not name the database file: %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("refusal took %v: it must not hang", time.Since(start))
	}
}

// TestE2ERunCommand drives `cvmwatch run --config FILE` itself: it scans,
// publishes a change, and shuts down cleanly when its context ends.
func TestE2ERunCommand(t *testing.T) {
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 30, Seed: 3, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "cvmwatch.yaml")
	cfgText := fmt.Sprintf(`data_dir: %s
accounts:
  - name: e2e
    regions: [ap-guangzhou]
    endpoint: %s
    credentials:
      secret_id: ${SIM_ID}
      secret_key: ${SIM_KEY}
poll:
  interval: 1s
nats:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
log:
  level: debug
`, filepath.Join(dir, "data"), sim.URL())
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIM_ID", cvmsim.DefaultSecretID)
	t.Setenv("SIM_KEY", cvmsim.DefaultSecretKey)

	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"run", "--config", cfgPath}, &stderr, &stderr) }() // the log goes to stdout
	finished := false
	t.Cleanup(func() { // on a failure path too: the daemon must not outlive the test
		cancel()
		if !finished {
			<-done
		}
	})

	// Subscribe as a user would, once the embedded server (on a port of
	// its own choosing) says where it listens.
	started := regexp.MustCompile(`embedded NATS server with JetStream started" url=(nats://127\.0\.0\.1:\d+)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m := started.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("embedded NATS never came up:\n%s", stderr.String())
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("cvm.state.>", msgs); err != nil {
		t.Fatal(err)
	}
	// Wait for the baseline (a scan summary), then stop an instance.
	scans := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("cvm.scan.e2e.ap-guangzhou", scans); err != nil {
		t.Fatal(err)
	}
	select {
	case <-scans:
	case <-time.After(20 * time.Second):
		t.Fatalf("no scan summary\n%s", stderr.String())
	}
	id := sim.Instances("ap-guangzhou")[0].InstanceId
	if err := sim.SetState(id, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if want := "cvm.state.e2e.ap-guangzhou." + id + ".RUNNING.STOPPED"; m.Subject != want {
			t.Fatalf("subject = %s, want %s", m.Subject, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no event\n%s", stderr.String())
	}
	cancel()
	select {
	case code := <-done:
		finished = true
		if code != 0 {
			t.Fatalf("run exited %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
	if strings.Contains(stderr.String(), cvmsim.DefaultSecretKey) {
		t.Error("the log contains the secret key")
	}
}
