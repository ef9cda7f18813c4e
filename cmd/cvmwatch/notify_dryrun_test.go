package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestNotifyDryRunReadsOnlySinceItsStart: --dry-run --since reads the
// events stored since its start, and the server never sends it the older
// ones (a long history is not pulled into memory to be thrown away): the
// connection receives fewer messages than the old events alone.
func TestNotifyDryRunReadsOnlySinceItsStart(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	const old = 300
	at := time.Now().Add(-time.Hour)
	var events []watcher.Event
	for i := range old {
		events = append(events, cliEvent("prod", "ap-guangzhou", fmt.Sprintf("ins-old%05d", i), 1, "RUNNING", "STOPPED", at))
	}
	f.publish(events...)
	start := time.Now() // after every old event was stored (acknowledged)
	f.publish(
		cliEvent("prod", "ap-guangzhou", "ins-new00001", 1, "RUNNING", "STOPPED", time.Now()),
		cliEvent("prod", "ap-guangzhou", "ins-new00002", 1, "RUNNING", "REBOOTING", time.Now()),
	)

	cfg := defaultConfig()
	cfg.Notify.Sinks = []SinkConfig{{Name: "ops", Type: "wecom", URL: Secret("http://127.0.0.1:1/cgi-bin/webhook/send?key=k")}}
	cfg.Notify.Routes = []RouteConfig{{Name: "all", Sinks: []string{"ops"}}}
	r, err := newNotifyRunner(&cfg, f.nc, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	before := f.nc.Stats().InMsgs
	var out bytes.Buffer
	if err := r.dryRun(t.Context(), start.Add(time.Hour), time.Hour, &out); err != nil {
		t.Fatal(err)
	}
	if got := f.nc.Stats().InMsgs - before; got >= old {
		t.Fatalf("the dry run received %d messages: the %d events before its start were sent to it", got, old)
	}
	got := out.String()
	for _, want := range []string{"ins-new00001 RUNNING -> STOPPED: route all", "ins-new00002 RUNNING -> REBOOTING: route all",
		"2 events in the last 1h0m0s"} {
		if !strings.Contains(got, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ins-old") {
		t.Fatalf("dry run shows an event from before its start:\n%s", got)
	}
}
