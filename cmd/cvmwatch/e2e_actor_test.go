package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// streamedAll reads every message of the event stream as events (state
// events, follow-ups and operation events), in stream order, each with its subject,
// Nats-Msg-Id and Content-Type checked against the event.
func (h *harness) streamedAll() []watcher.Event {
	h.t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort))
	if err != nil {
		h.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, h.cfg.NATS.Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []watcher.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			h.t.Fatalf("stream message %d: %v", seq, err)
		}
		if strings.HasPrefix(m.Subject, "cvm.scan.") {
			continue
		}
		e, err := watcher.UnmarshalCloudEvent(m.Data)
		if err != nil {
			h.t.Fatalf("stream message %d on %s: %v", seq, m.Subject, err)
		}
		if want, err := e.Subject("cvm"); err != nil || m.Subject != want {
			h.t.Errorf("event %s stored on %s, want %s", e.ID, m.Subject, want)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != e.ID {
			h.t.Errorf("event %s has Nats-Msg-Id %q", e.ID, got)
		}
		if got := m.Header.Get("Content-Type"); got != watcher.ContentType {
			h.t.Errorf("event %s has Content-Type %q", e.ID, got)
		}
		out = append(out, e)
	}
	return out
}

// Through the real daemon (bbolt, the SDK, embedded NATS): an operation on
// the simulator becomes an event on the stream with data.instance,
// data.operation and data.operation.actor when the audit record is there
// at once; with an audit delay beyond actor_wait the event goes out
// without the actor and a follow-up names it, exactly once across a
// restart of the daemon; and verify --sim passes on that stream.
func TestE2EActorOnTheStream(t *testing.T) {
	const delay = 1500 * time.Millisecond
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 6, Seed: 7, RateLimit: -1, AuditRateLimit: -1, AuditDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	h := newHarnessWith(t, sim, sim.URL(), func(c *Config) {
		c.Enrich.Actor = true
		c.Enrich.ActorWait = Duration(200 * time.Millisecond) // less than the audit delay
	})
	h.scanAndRelay() // baseline
	if err := h.d.watcher.RefreshOnce(t.Context(), h.target); err != nil {
		t.Fatal(err)
	}
	ids := h.running(2)
	eventOf := func(c watcher.Commit, id string) watcher.Event {
		t.Helper()
		for _, e := range c.Events {
			if e.InstanceID == id {
				return e
			}
		}
		t.Fatalf("no event of %s in %+v", id, c.Events)
		return watcher.Event{}
	}

	// At once: the record is visible by the time the scan looks it up.
	ridNow, err := sim.Operate(ids[0], cvmsim.ActionStopInstances, "ops-bot")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay + 100*time.Millisecond) // the audit record becomes visible; nothing here is timed
	now := eventOf(h.scanAndRelay(), ids[0])
	if now.Instance == nil || now.Operation == nil || now.Operation.RequestID != ridNow || now.Actor == nil || now.Actor.Username != "ops-bot" {
		t.Fatalf("event %+v: instance %+v operation %+v actor %+v, want all three, by ops-bot", now, now.Instance, now.Operation, now.Actor)
	}

	// Late: the record is not visible within actor_wait; the daemon stops
	// before the follow-up, which the next one publishes, once.
	ridLate, err := sim.Operate(ids[1], cvmsim.ActionStopInstances, "ci-deploy")
	if err != nil {
		t.Fatal(err)
	}
	late := eventOf(h.scanAndRelay(), ids[1])
	if late.Operation == nil || late.Operation.RequestID != ridLate || late.Actor != nil {
		t.Fatalf("late event: operation %+v actor %+v, want the operation without actor", late.Operation, late.Actor)
	}
	h.close()
	h.open()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := h.d.watcher.AttributeOnce(t.Context(), h.target)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if n != 0 || time.Now().After(deadline) {
			t.Fatalf("AttributeOnce = %d by the deadline", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, err := h.d.watcher.AttributeOnce(t.Context(), h.target); n != 0 || err != nil {
		t.Fatalf("a second round = %d, %v", n, err)
	}
	if err := h.relay(); err != nil {
		t.Fatal(err)
	}
	var follow []watcher.Event
	var state []watcher.Event
	for _, e := range h.streamedAll() {
		if e.Completes != "" {
			follow = append(follow, e)
		} else if !e.IsOperation() {
			state = append(state, e)
		}
	}
	checkChains(t, state)
	if len(follow) != 1 {
		t.Fatalf("follow-ups on the stream = %+v, want exactly 1", follow)
	}
	f := follow[0]
	if f.Completes != late.ID || f.ID != watcher.AttributedID(late.ID) || f.InstanceID != ids[1] ||
		f.Actor == nil || f.Actor.Username != "ci-deploy" || f.Operation == nil || f.Operation.RequestID != ridLate {
		t.Fatalf("follow-up = %+v (actor %+v, operation %+v), want ci-deploy completing %s", f, f.Actor, f.Operation, late.ID)
	}
	server := fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort)
	code, stdout, stderr := runCLI(t, "verify", "--server", server, "--sim", sim.URL())
	if code != 0 || !strings.Contains(stdout, "attribution: 2 operations against the true history, 2 actors against the recorded operations, 1 follow-ups, violations=0") {
		t.Fatalf("verify --sim = %d, want a pass that judged both operations, both actors and the follow-up\n%s\n%s", code, stdout, stderr)
	}
	// history shows both actors: the one found at once and the follow-up's.
	for id, who := range map[string]string{ids[0]: "by user ops-bot", ids[1]: "by user ci-deploy"} {
		code, stdout, stderr := runCLI(t, "history", "--server", server, "--no-color", id)
		if code != 0 || !strings.Contains(stdout, who) {
			t.Fatalf("history %s = %d, want %q in\n%s\n%s", id, code, who, stdout, stderr)
		}
	}
	code, stdout, _ = runCLI(t, "history", "--server", server, "--json", ids[1])
	if code != 0 || !strings.Contains(stdout, watcher.TypeAttributed) {
		t.Fatalf("history --json = %d, want the follow-up in\n%s", code, stdout)
	}
}
