package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestHistoryPrintsOneInstanceInOrderAndEnds: the instance's events only,
// in order, each exact replay once, and the command ends at the end of the
// stream.
func TestHistoryPrintsOneInstanceInOrderAndEnds(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	at := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	const id = "ins-r8hr2upy"
	mine := []watcher.Event{
		cliEvent("prod", "ap-guangzhou", id, 1, watcher.Absent, "PENDING", at),
		cliEvent("prod", "ap-guangzhou", id, 2, "PENDING", "RUNNING", at.Add(time.Minute)),
		cliEvent("prod", "ap-guangzhou", id, 3, "RUNNING", "STOPPED", at.Add(2*time.Minute)),
		cliEvent("prod", "ap-guangzhou", id, 4, "STOPPED", watcher.Absent, at.Add(3*time.Minute)),
	}
	for i, e := range mine {
		f.publish(e, cliEvent("prod", "ap-guangzhou", fmt.Sprintf("ins-other%03d", i), 1, "RUNNING", "STOPPED", at))
	}
	// An exact replay stored outside the duplicate window (no Nats-Msg-Id).
	body, err := watcher.MarshalCloudEvent(mine[2])
	if err != nil {
		t.Fatal(err)
	}
	subject, err := mine[2].Subject("cvm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jetstreamPublishRaw(f, subject, body); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "history", "--server", f.srv.ClientURL(), id)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	got := cliLines(stdout)
	want := []string{"ABSENT -> PENDING #1 first seen", "PENDING -> RUNNING #2 window 30s",
		"RUNNING -> STOPPED #3 window 30s", "STOPPED -> ABSENT #4 window 30s"}
	if len(got) != len(want) {
		t.Fatalf("history printed %d lines, want %d:\n%s", len(got), len(want), stdout)
	}
	for i, line := range got {
		norm := strings.Join(strings.Fields(line), " ")
		if !strings.Contains(norm, "prod/ap-guangzhou "+id+" "+want[i]) {
			t.Errorf("line %d = %q, want %q", i, norm, want[i])
		}
	}
	if !strings.Contains(stderr, "1 exact replays") {
		t.Errorf("stderr does not mention the replay:\n%s", stderr)
	}

	code, stdout, _ = runCLI(t, "history", "--server", f.srv.ClientURL(), "--json", id)
	if code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	for i, line := range cliLines(stdout) {
		e, err := watcher.UnmarshalCloudEvent([]byte(line))
		if err != nil {
			t.Fatalf("--json line %d: %v", i, err)
		}
		if e.ID != mine[i].ID || e.Sequence != uint64(i+1) {
			t.Errorf("--json line %d is %s #%d, want %s #%d", i, e.ID, e.Sequence, mine[i].ID, i+1)
		}
	}
}

func jetstreamPublishRaw(f *natsFixture, subject string, body []byte) (*nats.Msg, error) {
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set("Content-Type", watcher.ContentType)
	return f.nc.RequestMsg(m, 5*time.Second)
}

func TestHistoryReportsGaps(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	at := time.Now()
	const id = "ins-0a1b2c3d"
	f.publish(cliEvent("prod", "ap-guangzhou", id, 3, "RUNNING", "STOPPED", at))
	f.publish(cliEvent("prod", "ap-guangzhou", id, 5, "STARTING", "RUNNING", at))
	code, stdout, stderr := runCLI(t, "history", "--server", f.srv.ClientURL(), id)
	if code != 0 || len(cliLines(stdout)) != 2 {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, note := range []string{"starts at #3: #1..#2 are not in the stream", "#4..#4 are not in the stream"} {
		if !strings.Contains(stderr, note) {
			t.Errorf("stderr lacks %q:\n%s", note, stderr)
		}
	}
}

func TestHistoryFailures(t *testing.T) {
	t.Parallel()
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	f.publish(cliEvent("prod", "ap-guangzhou", "ins-r8hr2upy", 1, "RUNNING", "STOPPED", time.Now()))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"an instance with no events exits 1", []string{"--server", f.srv.ClientURL(), "ins-nothere1"}, 1,
			"no events of instance ins-nothere1 in stream CVMWATCH"},
		{"a missing stream exits 1", []string{"--server", f.srv.ClientURL(), "--stream", "OTHER", "ins-r8hr2upy"}, 1,
			"stream OTHER does not exist"},
		{"another prefix finds nothing, and says which prefix the stream holds", []string{"--server", f.srv.ClientURL(), "--prefix", "other", "ins-r8hr2upy"}, 1,
			"stream CVMWATCH holds 1 messages, none of them under other.state.>; it captures cvm.state.>, cvm.attribution.>, cvm.operation.> (try --prefix cvm)"},
		{"an unreachable server exits 1 at once", []string{"--server", "nats://127.0.0.1:1", "ins-r8hr2upy"}, 1,
			"no NATS server reachable"},
		{"no instance is a usage error", nil, 2, "one INSTANCE_ID"},
		{"two instances are a usage error", []string{"ins-a", "ins-b"}, 2, "one INSTANCE_ID"},
		{"a wildcard id is a usage error", []string{"ins-*"}, 2, "not a safe subject token"},
		{"a bad stream name is a usage error", []string{"--stream", "A.B", "ins-r8hr2upy"}, 2, "--stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := runCLI(t, append([]string{"history"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %v: history must end, not wait", d)
			}
		})
	}
}
