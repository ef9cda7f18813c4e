package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestVerifyCommand: `cvmwatch verify` accepts the stream the daemon wrote
// and rejects it, naming the event, once a forged event is in it.
func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 120)
	bs := time.Now()
	h.scanAndRelay()
	be := time.Now()
	id := h.running(1)[0]
	h.sim.SetState(id, "STOPPED")
	h.scanAndRelay()
	h.scanAndRelay()
	url := fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort)
	args := []string{"verify", "--server", url, "--sim", h.sim.URL(), "--final", "--must-see", "1ms",
		"--baseline-start", bs.Format(time.RFC3339Nano), "--baseline-end", be.Format(time.RFC3339Nano)}
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("verify of a faithful stream: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "events=1 ") || !strings.Contains(out.String(), "violations=0") {
		t.Fatalf("verify output: %s", out.String())
	}

	// Forge: the instance "started" again, which it never did.
	forged := watcher.Event{Target: h.target, InstanceID: id, From: "STOPPED", To: "RUNNING", Sequence: 2,
		ObservedAt: time.Now(), PreviousObservedAt: time.Now().Add(-time.Second)}
	forged.ID = watcher.EventID(forged.Target, id, 2, forged.From, forged.To)
	body, err := watcher.MarshalCloudEvent(forged)
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := forged.Subject("cvm")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject, body, jetstream.WithMsgID(forged.ID)); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := Run(t.Context(), args, &out, &errOut); code != 1 {
		t.Fatalf("verify of a forged stream: exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "unjustified") || !strings.Contains(out.String(), id) {
		t.Fatalf("verify does not name the forged event: %s", out.String())
	}
	// Without ground truth the forged event is still a consistent chain.
	out.Reset()
	if code := Run(t.Context(), []string{"verify", "--server", url}, &out, &errOut); code != 0 {
		t.Fatalf("chain-only verify: exit %d\n%s", code, out.String())
	}
}
