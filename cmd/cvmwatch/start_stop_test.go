package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestStopWhileStartingIsNotAFailure: SIGINT or SIGTERM while the daemon
// is still starting (here: its NATS server accepts the connection and
// never answers) ends it with status 0, as a stop asked for; it was exit 1
// ("context canceled"), which the HA soak took for a crash.
func TestStopWhileStartingIsNotAFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never a byte: a server that does not answer
		}
	}()
	cfg := daemonConfig{DataDir: t.TempDir(), SimURL: "http://127.0.0.1:1", NATSURL: "nats://" + ln.Addr().String(),
		Listen: "127.0.0.1:0", Regions: []string{"ap-guangzhou"}, Interval: time.Second}.write(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"run", "--config", cfg}, &out, &out) }()
	select {
	case c := <-accepted:
		defer c.Close()
	case code := <-done:
		t.Fatalf("run ended (%d) before connecting:\n%s", code, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("run never connected to the NATS address:\n%s", out.String())
	}
	cancel() // the signal, while it waits for the server's INFO
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("stopped while starting: exit %d, want 0\n%s", code, out.String())
		}
		if !strings.Contains(out.String(), "stopped while starting") {
			t.Fatalf("no word of the stop:\n%s", out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not end within 30s of the stop:\n%s", out.String())
	}
}
