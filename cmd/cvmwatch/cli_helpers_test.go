package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// natsFixture is a real embedded NATS server with the CVMWATCH stream and
// the product's JetStream publisher on it, for the commands that read events.
type natsFixture struct {
	t   *testing.T
	srv *publisher.Embedded
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *publisher.JetStream
}

func newNATSFixture(t *testing.T, cfg publisher.EmbeddedConfig) *natsFixture {
	t.Helper()
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	cfg.StoreDir = t.TempDir()
	srv, err := publisher.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	opts := []nats.Option{}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.NewJetStream(js, publisher.JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &natsFixture{t: t, srv: srv, nc: nc, js: js, pub: pub}
}

// publish publishes events through the product's publisher and waits for
// every ack.
func (f *natsFixture) publish(events ...watcher.Event) {
	f.t.Helper()
	if n, err := f.pub.Publish(f.t.Context(), events); err != nil || n != len(events) {
		f.t.Fatalf("publish: %d of %d acked, %v", n, len(events), err)
	}
}

// cliEvent builds the event of one transition, observed at at, with a
// 30-second window (none for an appearance), and its real id.
func cliEvent(account, region, id string, seq uint64, from, to watcher.State, at time.Time) watcher.Event {
	t := watcher.Target{Account: account, Region: region}
	e := watcher.Event{
		ID: watcher.EventID(t, id, seq, from, to), Target: t, InstanceID: id,
		From: from, To: to, Sequence: seq, ObservedAt: at.UTC().Truncate(time.Millisecond),
	}
	if from != watcher.Absent {
		e.PreviousObservedAt = e.ObservedAt.Add(-30 * time.Second)
	}
	return e
}

// cliRun is a command line running in the background, as a user runs it.
type cliRun struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// startCLI runs args until the test ends or stop is called.
func startCLI(t *testing.T, args ...string) *cliRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &cliRun{cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- Run(ctx, args, &r.stdout, &r.stderr) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the command (Ctrl-C) and returns its exit code.
func (r *cliRun) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // later calls see it too
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("command did not stop after its context ended\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
		return -1
	}
}

// runCLI runs args to completion, bounded by a deadline.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	code = Run(ctx, args, &out, &errOut)
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish in time\nstdout:\n%s\nstderr:\n%s", args, out.String(), errOut.String())
	}
	return code, out.String(), errOut.String()
}

// cliWait polls cond until it holds or the deadline passes.
func cliWait(t *testing.T, what string, cond func() bool, dump func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *cliRun) dump() string {
	return "stdout:\n" + r.stdout.String() + "\nstderr:\n" + r.stderr.String()
}

// cliLines returns the non-empty lines of s.
func cliLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
