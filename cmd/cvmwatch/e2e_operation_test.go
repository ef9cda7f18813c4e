package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// Through the real daemon (bbolt, the SDK, embedded NATS): a reboot that
// is over before the next look leaves no visible state change; the
// refresh finds its new LatestOperationRequestId and publishes it as an
// operation event, once, while a stop seen by the same refresh is held
// for the scan's transition; and verify --sim passes on that stream,
// having judged the operation event against the simulator's records.
func TestE2EOperationWithoutAStateChangeOnTheStream(t *testing.T) {
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 4, Seed: 7, RateLimit: -1, AuditRateLimit: -1, DwellScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	h := newHarnessWith(t, sim, sim.URL(), func(c *Config) { c.Enrich.Actor = true })
	h.scanAndRelay() // baseline
	if err := h.d.watcher.RefreshOnce(t.Context(), h.target); err != nil {
		t.Fatal(err)
	}
	ids := h.running(2)
	ridReboot, err := sim.Operate(ids[0], cvmsim.ActionRebootInstances, "ops-bot")
	if err != nil {
		t.Fatal(err)
	}
	ridStop, err := sim.Operate(ids[1], cvmsim.ActionStopInstances, "ci-deploy")
	if err != nil {
		t.Fatal(err)
	}
	// Both operations end within milliseconds (DwellScale). The simulator
	// applies due changes when it answers: refresh until it says both are
	// over (a refresh that sees them in progress holds them), then once
	// more, which sees them over.
	settled := map[string]string{ids[0]: cvmsim.StateRunning, ids[1]: cvmsim.StateStopped}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		done := 0
		for _, in := range sim.Instances(h.target.Region) {
			if want, ok := settled[in.InstanceId]; ok && in.InstanceState == want && in.LatestOperationState == cvmsim.OperationSuccess {
				done++
			}
		}
		if done == len(settled) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the simulator's operations did not settle")
		}
		if err := h.d.watcher.RefreshOnce(t.Context(), h.target); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.d.watcher.RefreshOnce(t.Context(), h.target); err != nil {
		t.Fatal(err)
	}
	c := h.scanAndRelay()
	if len(c.Events) != 1 || c.Events[0].InstanceID != ids[1] || c.Events[0].Operation == nil || c.Events[0].Operation.RequestID != ridStop {
		t.Fatalf("scan events = %+v, want the stop of %s carrying %s (held by the refresh)", c.Events, ids[1], ridStop)
	}
	if err := h.d.watcher.RefreshOnce(t.Context(), h.target); err != nil { // again: nothing new
		t.Fatal(err)
	}
	// The reboot's actor: a follow-up, once CloudAudit shows the record.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n, err := h.d.watcher.AttributeOnce(t.Context(), h.target)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no follow-up named the reboot's actor within 20s")
		}
	}
	if err := h.relay(); err != nil {
		t.Fatal(err)
	}
	var ops []watcher.Event
	for _, e := range h.streamedAll() {
		if e.IsOperation() {
			ops = append(ops, e)
		}
	}
	if len(ops) != 1 || ops[0].InstanceID != ids[0] || ops[0].Operation == nil || ops[0].Operation.RequestID != ridReboot ||
		ops[0].Operation.Name != cvmsim.ActionRebootInstances || ops[0].To != watcher.StateRunning || ops[0].Instance == nil {
		t.Fatalf("operation events on the stream = %+v, want the reboot of %s (%s), once", ops, ids[0], ridReboot)
	}
	server := fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort)
	code, stdout, stderr := runCLI(t, "verify", "--server", server, "--sim", sim.URL())
	if code != 0 || !strings.Contains(stdout, "operation events: 1, 1 of them against the recorded operations, violations=0") {
		t.Fatalf("verify --sim = %d, want a pass that judged the operation event\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "verify", "--server", server, "--sim", sim.URL(), "--json")
	if code != 0 || !strings.Contains(stdout, `"operations": {`) {
		t.Fatalf("verify --json = %d, want the operations report in\n%s", code, stdout)
	}
	// history and tail show it between the transitions.
	code, stdout, stderr = runCLI(t, "history", "--server", server, ids[0])
	if code != 0 || !strings.Contains(stdout, "(no change)") || !strings.Contains(stdout, cvmsim.ActionRebootInstances) {
		t.Fatalf("history %s = %d, want the reboot's operation event in\n%s\n%s", ids[0], code, stdout, stderr)
	}
	if out := tailUntil(t, cvmsim.ActionRebootInstances, "tail", "--server", server, "--all", "instance="+ids[0]); !strings.Contains(out, "(no change)") {
		t.Fatalf("tail --all did not show the operation event as one:\n%s", out)
	}
	// The stopped instance's operation went with its transition: no
	// operation event in its history.
	code, stdout, stderr = runCLI(t, "history", "--server", server, ids[1])
	if code != 0 || strings.Contains(stdout, "(no change)") {
		t.Fatalf("history %s = %d, want no operation event (its stop was a transition)\n%s\n%s", ids[1], code, stdout, stderr)
	}
}

// tailUntil runs a tail command until its output holds want (it follows
// forever otherwise) and returns the output; it fails the test if want does
// not show within 60 s.
func tailUntil(t *testing.T, want string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var w syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, args, &w, &w) }()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(w.String(), want); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("%v ended (%d) before showing %s:\n%s", args, code, want, w.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v did not show %s within 60s:\n%s", args, want, w.String())
		}
	}
	cancel()
	<-done
	return w.String()
}

// TestE2EMixedScanNamesTheCyclesPollingMissed: with the defaults, a full
// scan reads part of its pages through DescribeInstances; a reboot that was
// over before that scan looked is published as an operation event by the
// scan itself (no refresh), once, and verify --sim finds it true. Reboots
// on pages read through DescribeInstancesStatus are not seen by that scan:
// the test asserts only on what the scan described.
func TestE2EMixedScanNamesTheCyclesPollingMissed(t *testing.T) {
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 800, Seed: 11, RateLimit: -1, AuditRateLimit: -1, DwellScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	h := newHarnessWith(t, sim, sim.URL(), nil)
	h.scanAndRelay() // baseline: silent
	// The refresh describes every instance: each now has a stored
	// enrichment to compare with, whichever API a scan reads it through.
	if err := h.d.watcher.RefreshOnce(t.Context(), h.target); err != nil {
		t.Fatal(err)
	}
	ids := h.running(401)
	h.setState(ids[400], cvmsim.StateStopped) // one transition the stream shows too
	ids = ids[:400]
	// Each reboot goes through REBOOTING and back to RUNNING between two
	// scans: polling sees no change.
	rebooted := map[string]string{}
	for _, id := range ids {
		in, err := sim.Update(id, cvmsim.Update{State: cvmsim.StateRebooting, Operation: cvmsim.ActionRebootInstances, Actor: "ops-bot"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.Update(id, cvmsim.Update{State: cvmsim.StateRunning, OperationState: cvmsim.OperationSuccess}); err != nil {
			t.Fatal(err)
		}
		rebooted[id] = in.LatestOperationRequestId
	}
	// Which pages a scan reads through DescribeInstances depends on the two
	// limiters' turns (and page 0 and the order probe always go first), so
	// a scan on a loaded machine may read none that way: scan until one
	// does. Reboots it did not describe stay unreported until one does.
	var ops, transitions, scans int
	for ops == 0 {
		if scans++; scans > 20 {
			t.Fatalf("20 scans committed no operation event for %d reboots they could not see as transitions", len(rebooted))
		}
		for _, e := range h.scanAndRelay().Events {
			if !e.IsOperation() {
				transitions++
				continue
			}
			ops++
			if rid, ok := rebooted[e.InstanceID]; !ok || e.Operation == nil || e.Operation.RequestID != rid {
				t.Fatalf("operation event %+v: not one of the reboots made", e)
			}
		}
	}
	if transitions != 1 {
		t.Fatalf("%d transitions, want the one stop", transitions)
	}
	t.Logf("%d reboots: %d operation events from the DescribeInstances pages of %d scan(s)", len(rebooted), ops, scans)
	h.scanAndRelay() // again: verify below finds no request reported twice
	server := fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort)
	if code, stdout, stderr := runCLI(t, "verify", "--server", server, "--sim", sim.URL()); code != 0 || !strings.Contains(stdout, "violations=0") {
		t.Fatalf("verify --sim = %d\n%s\n%s", code, stdout, stderr)
	}
}
