package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestFilterSubject(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no filter is every transition", nil, "cvm.state.*.*.*.*.*"},
		{"account and to", []string{"to=STOPPED", "account=prod"}, "cvm.state.prod.*.*.*.STOPPED"},
		{"states are upper-cased", []string{"from=running", "to=absent"}, "cvm.state.*.*.*.RUNNING.ABSENT"},
		{"every key", []string{"account=a", "region=ap-guangzhou", "instance=ins-r8hr2upy", "from=RUNNING", "to=STOPPED"},
			"cvm.state.a.ap-guangzhou.ins-r8hr2upy.RUNNING.STOPPED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filterSubject("cvm", tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("subject = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTailUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	// The server is never contacted: every one of these fails first.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown filter key", []string{"zone=ap-guangzhou-3"}, `unknown key "zone"`},
		{"filter without a value", []string{"account="}, "empty"},
		{"filter that is not key=value", []string{"ins-r8hr2upy"}, "want KEY=VALUE"},
		{"wildcard in a value", []string{"account=prod.*"}, "not a safe subject token"},
		{"key given twice", []string{"account=a", "account=b"}, "account given twice"},
		{"since and all", []string{"--since", "1h", "--all"}, "exclude each other"},
		{"negative since", []string{"--since", "-1h"}, "negative"},
		{"bad prefix", []string{"--prefix", "cvm..x"}, "--prefix"},
		{"unknown flag", []string{"--follow"}, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"tail", "--server", "nats://127.0.0.1:1"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestTailPrintsOnlyWhatTheFiltersMatch(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	r := startCLI(t, "tail", "--server", f.srv.ClientURL(), "account=prod", "to=stopped")
	cliWait(t, "the subscription", func() bool {
		return strings.Contains(r.stderr.String(), "following cvm.state.prod.*.*.*.STOPPED")
	}, r.dump)

	at := time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	f.publish(
		cliEvent("prod", "ap-guangzhou", "ins-aaaaaaaa", 1, "STOPPED", "RUNNING", at),
		cliEvent("staging", "ap-guangzhou", "ins-bbbbbbbb", 1, "RUNNING", "STOPPED", at),
		cliEvent("prod", "ap-shanghai", "ins-cccccccc", 1, watcher.Absent, "PENDING", at),
	)
	want := cliEvent("prod", "ap-shanghai", "ins-dddddddd", 7, "RUNNING", "STOPPED", at)
	f.publish(want)
	cliWait(t, "the matching event", func() bool { return strings.Contains(r.stdout.String(), "ins-dddddddd") }, r.dump)
	if code := r.stop(t); code != 0 {
		t.Fatalf("tail exited %d on Ctrl-C, want 0\n%s", code, r.dump())
	}

	got := cliLines(r.stdout.String())
	if len(got) != 1 {
		t.Fatalf("tail printed %d lines, want only the matching one:\n%s", len(got), r.stdout.String())
	}
	line := strings.Join(strings.Fields(got[0]), " ")
	wantTime := at.Local().Format(lineTimeFormat)
	for _, part := range []string{wantTime, "prod/ap-shanghai", "ins-dddddddd", "RUNNING -> STOPPED", "#7", "window 30s"} {
		if !strings.Contains(line, part) {
			t.Errorf("line %q lacks %q", line, part)
		}
	}
	if strings.Contains(line, "\x1b[") {
		t.Errorf("colour codes written to a pipe: %q", line)
	}
}

func TestTailJSONIsTheCloudEventAsPublished(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	r := startCLI(t, "tail", "--server", f.srv.ClientURL(), "--json", "instance=ins-r8hr2upy")
	cliWait(t, "the subscription", func() bool { return strings.Contains(r.stderr.String(), "following") }, r.dump)

	at := time.Now()
	events := []watcher.Event{
		cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 1, watcher.Absent, "PENDING", at),
		cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 2, "PENDING", "RUNNING", at.Add(time.Second)),
	}
	for _, e := range events { // one at a time: the order is the instance's order
		f.publish(e)
	}
	cliWait(t, "two lines", func() bool { return len(cliLines(r.stdout.String())) == 2 }, r.dump)
	for i, line := range cliLines(r.stdout.String()) {
		body, err := watcher.MarshalCloudEvent(events[i])
		if err != nil {
			t.Fatal(err)
		}
		if line != string(body) {
			t.Errorf("line %d = %s\nwant the published body %s", i, line, body)
		}
		e, err := watcher.UnmarshalCloudEvent([]byte(line))
		if err != nil {
			t.Fatalf("line %d does not decode: %v", i, err)
		}
		if e.ID != events[i].ID || e.Sequence != events[i].Sequence || !e.ObservedAt.Equal(events[i].ObservedAt) {
			t.Errorf("line %d decodes to %+v, want %+v", i, e, events[i])
		}
	}
}

func TestTailAllReplaysTheStreamThenFollows(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	at := time.Now()
	f.publish(cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 1, "RUNNING", "STOPPED", at))
	f.publish(cliEvent("prod", "ap-guangzhou", "ins-zzzzzzzz", 1, "RUNNING", "STOPPED", at))

	for _, mode := range [][]string{{"--all"}, {"--since", "1h"}} {
		t.Run(mode[0], func(t *testing.T) {
			r := startCLI(t, append([]string{"tail", "--server", f.srv.ClientURL(), "--no-color", "instance=ins-r8hr2upy"}, mode...)...)
			cliWait(t, "the replayed event", func() bool { return strings.Contains(r.stdout.String(), "#1") }, r.dump)
			if mode[0] == "--all" {
				f.publish(cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 2, "STOPPED", "STARTING", at.Add(time.Second)))
			}
			cliWait(t, "the live event", func() bool { return strings.Contains(r.stdout.String(), "#2") }, r.dump)
			if code := r.stop(t); code != 0 {
				t.Fatalf("exit %d\n%s", code, r.dump())
			}
			got := cliLines(r.stdout.String())
			if len(got) != 2 || !strings.Contains(got[0], "#1") || !strings.Contains(strings.Join(strings.Fields(got[1]), " "), "STOPPED -> STARTING") {
				t.Fatalf("lines = %q, want #1 then #2 of ins-r8hr2upy only", got)
			}
		})
	}
}

func TestTailReplayFromAMissingStreamFails(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	code, _, stderr := runCLI(t, "tail", "--server", f.srv.ClientURL(), "--all", "--stream", "NOSUCH")
	if code != 1 || !strings.Contains(stderr, "stream NOSUCH does not exist") {
		t.Fatalf("exit %d, stderr %q; want 1 and a missing-stream message", code, stderr)
	}
}

// TestTailWaitsForTheServer starts tail before NATS, as docker compose may.
func TestTailWaitsForTheServer(t *testing.T) {
	t.Parallel()
	port := publishertest.RestartablePort(t) // free until the server starts on it
	r := startCLI(t, "tail", "--server", fmt.Sprintf("nats://127.0.0.1:%d", port))
	cliWait(t, "the waiting notice", func() bool { return strings.Contains(r.stderr.String(), "waiting for NATS") }, r.dump)
	f := newNATSFixture(t, publisher.EmbeddedConfig{Port: port})
	cliWait(t, "the subscription", func() bool { return strings.Contains(r.stderr.String(), "following") }, r.dump)
	f.publish(cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 1, "RUNNING", "STOPPED", time.Now()))
	cliWait(t, "the event", func() bool { return strings.Contains(r.stdout.String(), "ins-r8hr2upy") }, r.dump)
}

// TestTailCredentialsNeverShow: a token from the environment authenticates,
// and neither it nor a wrong one appears in --help, output or errors.
func TestTailCredentialsNeverShow(t *testing.T) {
	const token, wrong = "tok-9f8e7d6c5b4a", "tok-wrong-0a1b2c3d"
	f := newNATSFixture(t, publisher.EmbeddedConfig{Token: token})
	t.Setenv("NATS_TOKEN", token)

	_, help, _ := runCLI(t, "tail", "--help")
	if strings.Contains(help, token) {
		t.Error("tail --help shows NATS_TOKEN")
	}

	r := startCLI(t, "tail", "--server", f.srv.ClientURL())
	cliWait(t, "the subscription", func() bool { return strings.Contains(r.stderr.String(), "following") }, r.dump)
	f.publish(cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 1, "RUNNING", "STOPPED", time.Now()))
	cliWait(t, "the event", func() bool { return strings.Contains(r.stdout.String(), "ins-r8hr2upy") }, r.dump)
	r.stop(t)

	code, stdout, stderr := runCLI(t, "history", "--server", f.srv.ClientURL(), "--token", wrong, "ins-r8hr2upy")
	if code != 1 {
		t.Fatalf("history with a wrong token exited %d, want 1", code)
	}
	for _, out := range []string{r.stdout.String(), r.stderr.String(), stdout, stderr} {
		if strings.Contains(out, token) || strings.Contains(out, wrong) {
			t.Errorf("a token is in the output:\n%s", out)
		}
	}
}
