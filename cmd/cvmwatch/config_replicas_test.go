package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// nats.replicas is auto unless written, check-config shows auto as "auto"
// (it does not connect, so it cannot know), and only 1-5 or auto are taken.
func TestNATSReplicas(t *testing.T) {
	const accounts = "accounts: [{name: prod, regions: [ap-guangzhou]}]\n"
	for _, tc := range []struct {
		raw  string
		want Replicas
		show string
	}{
		{"", publisher.AutoReplicas, "replicas: auto"},
		{"nats: {replicas: auto}\n", publisher.AutoReplicas, "replicas: auto"},
		{"nats: {replicas: 3}\n", 3, "replicas: 3"},
		{"nats: {replicas: 1}\n", 1, "replicas: 1"},
	} {
		cfg, err := ParseConfig([]byte(accounts+tc.raw), env(nil))
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		if got := cfg.NATS.Replicas; got != tc.want {
			t.Errorf("%q: replicas = %v, want %v", tc.raw, got, tc.want)
		}
		out, err := yaml.Marshal(cfg) // what check-config prints
		if err != nil || !strings.Contains(string(out), tc.show) {
			t.Errorf("%q: effective configuration without %q (%v):\n%s", tc.raw, tc.show, err, out)
		}
		checkEffectiveConfigLoads(t, cfg)
	}
	for _, bad := range []string{"0", "6", "-1", "two", "[3]", "2.5"} {
		_, err := ParseConfig([]byte(accounts+"nats: {replicas: "+bad+"}\n"), env(nil))
		if err == nil || !strings.Contains(err.Error(), "nats.replicas") || !strings.Contains(err.Error(), "auto") {
			t.Errorf("replicas: %s: %v; want an error naming nats.replicas and auto", bad, err)
		}
	}
	// Built in Go (demo, tests), a count out of range is refused too.
	cfg := defaultConfig()
	cfg.NATS.Replicas = 7
	if errs := cfg.NATS.validate("nats"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "nats.replicas") {
		t.Errorf("validate with 7 replicas = %v, want one error on nats.replicas", errs)
	}
}

// state shows each stream with its replica count.
func TestStateShowsTheStreamsReplicas(t *testing.T) {
	var b bytes.Buffer
	printState(&b, stateView{source: "http://127.0.0.1:9090",
		streams: []publisher.StreamStatus{{Name: "CVMWATCH", Subjects: []string{"cvm.>"}, Replicas: 3}}}, false)
	if got, want := b.String(), "stream CVMWATCH: 3 replica(s), subjects cvm.>"; !strings.Contains(got, want) {
		t.Errorf("state printed\n%s\nwant a line %q", got, want)
	}
}

// With no daemon, state --server reads each target's latest summary from
// the scans stream, and shows both streams with their replicas.
func TestStateFromTheScansStream(t *testing.T) {
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	at := time.Now().Add(-time.Minute).UTC()
	tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	for i, n := range []int{3, 4} {
		s := watcher.ScanSummary{Target: tg, Started: at.Add(time.Duration(i) * 30 * time.Second), Complete: true,
			Instances: n, ByState: map[watcher.State]int{"RUNNING": n - 1, "STOPPED": 1}}
		if err := f.pub.PublishScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runCLI(t, "state", "--server", f.srv.ClientURL())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"stream CVMWATCH_SCANS at", "stream CVMWATCH: 1 replica(s), subjects cvm.state.>",
		"stream CVMWATCH_SCANS: 1 replica(s), subjects cvm.scan.>", "prod/ap-guangzhou  4 ", "RUNNING 3, STOPPED 1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("state --server printed no %q:\n%s", want, stdout)
		}
	}
}
