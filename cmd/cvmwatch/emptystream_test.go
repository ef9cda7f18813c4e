package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// bigPrefixFixture is a server with the default stream CVMWATCH (empty) and
// a stream CVMBIG holding three events written with nats.subject_prefix
// cvmbig: the stream a user reads while forgetting --prefix.
func bigPrefixFixture(t *testing.T) *natsFixture {
	t.Helper()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	if _, err := publisher.EnsureStream(t.Context(), f.js, publisher.StreamConfig{Name: "CVMBIG", Prefix: "cvmbig"}); err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.NewJetStream(f.js, publisher.JetStreamConfig{Prefix: "cvmbig"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	events := []watcher.Event{
		cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 1, "RUNNING", "STOPPED", at),
		cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 2, "STOPPED", "STARTING", at.Add(time.Second)),
		cliEvent("prod", "ap-guangzhou", "ins-zzzzzzzz", 1, "RUNNING", "REBOOTING", at),
	}
	if n, err := pub.Publish(t.Context(), events); err != nil || n != len(events) {
		t.Fatalf("publish: %d of %d acked, %v", n, len(events), err)
	}
	return f
}

// TestVerifyNeverPassesOnNothing: a stream that holds messages, none under
// the prefix asked for, fails and names the prefix that would match; an
// empty stream fails unless --allow-empty; with the right prefix the report
// shows what each check judged.
func TestVerifyNeverPassesOnNothing(t *testing.T) {
	t.Parallel()
	f := bigPrefixFixture(t)
	url := f.srv.ClientURL()

	code, stdout, stderr := runCLI(t, "verify", "--server", url, "--stream", "CVMBIG")
	if code != 1 {
		t.Fatalf("verify of a stream with nothing under cvm.state.>: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"nothing was checked", "stream CVMBIG holds 3 messages, none of them under cvm.state.>",
		"it captures cvmbig.state.>, cvmbig.attribution.>, cvmbig.operation.>", "try --prefix cvmbig"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}

	code, stdout, stderr = runCLI(t, "verify", "--server", url, "--stream", "CVMBIG", "--prefix", "cvmbig")
	if code != 0 {
		t.Fatalf("verify with the right prefix: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"messages=3 events=3 instances=2", "checked form, subject and id: 3 messages",
		"checked per-instance chains: 2 instances", "checked events compared with the true history: 0 of 3",
		"checked span: events observed from "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report does not say %q:\n%s", want, stdout)
		}
	}

	t.Run("an empty stream fails unless --allow-empty", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "verify", "--server", url)
		if code != 1 || !strings.Contains(stderr, "stream CVMWATCH holds no event under cvm.state.>") {
			t.Fatalf("exit %d, stderr %q; want 1 and the empty stream named\n%s", code, stderr, stdout)
		}
		if code, stdout, stderr := runCLI(t, "verify", "--server", url, "--allow-empty"); code != 0 {
			t.Fatalf("--allow-empty: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("with --sim, the truth's changes are named", func(t *testing.T) {
		sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 5, RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sim.Close)
		code, stdout, stderr := runCLI(t, "verify", "--server", url, "--sim", sim.URL())
		if code != 1 || !strings.Contains(stderr, "while the simulator's truth records 5 changes") {
			t.Fatalf("exit %d, stderr %q; want 1 and the truth's changes\n%s", code, stderr, stdout)
		}
	})

	t.Run("--json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "verify", "--server", url, "--stream", "CVMBIG", "--prefix", "cvmbig", "--json")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		var r struct {
			Messages, Events, Instances int
			First, Last                 time.Time
			Violations                  []any
		}
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		if r.Messages != 3 || r.Events != 3 || r.Instances != 2 || r.Violations == nil || len(r.Violations) != 0 {
			t.Fatalf("report = %+v, want 3 messages, 3 events, 2 instances, violations []", r)
		}
		if !r.Last.After(r.First) {
			t.Fatalf("span [%v, %v] is empty", r.First, r.Last)
		}
	})
}

// TestReadersSayTheStreamHoldsNothingUnderThePrefix: history and tail
// --since on a stream that holds nothing under the prefix say so, naming the
// prefix that would match, instead of printing nothing.
func TestReadersSayTheStreamHoldsNothingUnderThePrefix(t *testing.T) {
	t.Parallel()
	f := bigPrefixFixture(t)
	url := f.srv.ClientURL()

	code, stdout, stderr := runCLI(t, "history", "--server", url, "--stream", "CVMBIG", "ins-r8hr2upy")
	if code != 1 || !strings.Contains(stderr, "none of them under cvm.state.>") || !strings.Contains(stderr, "try --prefix cvmbig") {
		t.Fatalf("history: exit %d, stderr %q; want 1 and the prefix that matches\n%s", code, stderr, stdout)
	}
	if code, stdout, stderr := runCLI(t, "history", "--server", url, "--stream", "CVMBIG", "--prefix", "cvmbig", "ins-r8hr2upy"); code != 0 || len(cliLines(stdout)) != 2 {
		t.Fatalf("history with the right prefix: exit %d, %q\n%s", code, stdout, stderr)
	}

	r := startCLI(t, "tail", "--server", url, "--stream", "CVMBIG", "--since", "1h")
	cliWait(t, "tail to say the stream holds nothing under the prefix", func() bool {
		return strings.Contains(r.stderr.String(), "none of them under cvm.state.>") && strings.Contains(r.stderr.String(), "try --prefix cvmbig")
	}, r.dump)
	if code := r.stop(t); code != 0 {
		t.Fatalf("tail: exit %d\n%s", code, r.dump())
	}
	if r.stdout.String() != "" {
		t.Fatalf("tail printed %q", r.stdout.String())
	}
}
