package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/notifier/notifiertest"
)

// notifyRig is the real pipeline with the notifier: simulator, daemon
// (scans driven by the test), a separate NATS server, and two fake rooms.
type notifyRig struct {
	*harness
	wecom, slack       *notifiertest.Room
	wecomURL, slackURL string
}

// newNotifyRig wires it: stops go to the WeCom room in groups of 12, every
// other change to the Slack room in groups of 2 (group_wait is an hour, so
// that a group is cut by its size alone and the test waits on no clock).
func newNotifyRig(t *testing.T) *notifyRig {
	t.Helper()
	r := &notifyRig{harness: newHarness(t, 30),
		wecom: notifiertest.NewRoom(notifiertest.WeCom, notifiertest.Options{}),
		slack: notifiertest.NewRoom(notifiertest.Slack, notifiertest.Options{})}
	r.wecomURL = r.wecom.Server(t).URL + "/cgi-bin/webhook/send?key=TOPSECRET"
	r.slackURL = r.slack.Server(t).URL + "/services/T/B/TOPSECRET"
	r.close()
	r.cfg.Notify.Sinks = []SinkConfig{
		{Name: "ops", Type: "wecom", URL: Secret(r.wecomURL)},
		{Name: "chat", Type: "slack", URL: Secret(r.slackURL)},
	}
	r.cfg.Notify.Routes = []RouteConfig{
		{Name: "stops", Sinks: []string{"ops"}, Match: MatchConfig{To: []string{"STOPPED"}}, GroupMax: 12, GroupWait: Duration(time.Hour)},
		{Name: "rest", Sinks: []string{"chat"}, GroupMax: 2, GroupWait: Duration(time.Hour)},
	}
	if errs := r.cfg.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	r.open()
	return r
}

// runNotifier runs the daemon's notifier until the returned stop is called.
func (r *notifyRig) runNotifier() (stop func()) {
	ctx, cancel := context.WithCancel(r.t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.d.notify.Run(ctx) }()
	return func() { cancel(); <-done }
}

// waitFor polls cond until it holds, or fails the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestE2ENotifyGroupsRoutesRebootsOutagesAndRestarts(t *testing.T) {
	r := newNotifyRig(t)
	r.scanAndRelay() // the silent baseline
	stop := r.runNotifier()

	// Twelve stops: one WeCom message.
	ids := r.running(16)
	for _, id := range ids[:12] {
		r.setState(id, "STOPPED")
	}
	r.scanAndRelay()
	waitFor(t, "the WeCom message", func() bool { return len(r.wecom.Messages()) == 1 })
	if text := r.wecom.Messages()[0].Text; !strings.Contains(text, "**12 instances STOPPED in prod / ap-guangzhou**") {
		t.Fatalf("WeCom message:\n%s", text)
	}

	// A reboot seen in two scans: one Slack message, shown once as rebooted.
	r.setState(ids[12], "REBOOTING")
	r.scanAndRelay()
	r.setState(ids[12], "RUNNING")
	r.scanAndRelay()
	waitFor(t, "the reboot message", func() bool { return len(r.slack.Messages()) == 1 })
	if text := r.slack.Messages()[0].Text; strings.Count(text, ids[12]) != 1 || !strings.Contains(text, "1 instance rebooted") {
		t.Fatalf("Slack message:\n%s", text)
	}

	// The Slack room goes down; the notifier is killed while it retries,
	// and started again; the room comes back: the message arrives once.
	r.slack.SetDown(-1)
	r.setState(ids[13], "REBOOTING")
	r.scanAndRelay()
	r.setState(ids[13], "RUNNING")
	r.scanAndRelay()
	waitFor(t, "a refused post", func() bool { return r.slack.Requests() >= 3 })
	stop()
	r.slack.SetDown(0)
	stop = r.runNotifier()
	defer stop()
	waitFor(t, "the message after the outage", func() bool { return len(r.slack.Messages()) == 2 })

	// Everything is acknowledged; nothing was told twice.
	waitFor(t, "the consumer to catch up", func() bool {
		c, err := r.d.notify.js.Consumer(t.Context(), r.cfg.NATS.Stream, r.cfg.Notify.Durable)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if got := len(r.wecom.Messages()); got != 1 {
		t.Fatalf("WeCom room has %d messages, want 1", got)
	}
	msgs := r.slack.Messages()
	if got := len(msgs); got != 2 {
		t.Fatalf("Slack room has %d messages, want 2", got)
	}
	if !strings.Contains(msgs[1].Text, ids[13]) || strings.Contains(msgs[1].Text, ids[12]) {
		t.Fatalf("the message after the outage:\n%s", msgs[1].Text)
	}
	if r.wecom.Throttled()+r.slack.Throttled() != 0 {
		t.Fatalf("a room was throttled")
	}

	// notify --dry-run shows each event's route and the messages, and never
	// the webhook URLs.
	path := filepath.Join(t.TempDir(), "notify.yaml")
	cfgText := fmt.Sprintf(`accounts: [{name: prod, regions: [ap-guangzhou]}]
nats: {url: "nats://127.0.0.1:%d"}
notify:
  sinks:
    - {name: ops, type: wecom, url: "${OPS_URL}"}
    - {name: chat, type: slack, url: "${CHAT_URL}"}
  routes:
    - {name: stops, sinks: [ops], match: {to: [STOPPED]}}
    - {name: rest, sinks: [chat]}
`, r.natsPort)
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPS_URL", r.wecomURL)
	t.Setenv("CHAT_URL", r.slackURL)
	var out syncBuffer
	if code := Run(t.Context(), []string{"notify", "--config", path, "--dry-run"}, &out, &out); code != 0 {
		t.Fatalf("notify --dry-run exited %d:\n%s", code, out.String())
	}
	got := out.String()
	// An enriched event's line names the instance: "web-01 (ins-...) RUNNING -> ...".
	for _, want := range []string{ids[0] + " RUNNING -> STOPPED: route stops", ids[12] + " RUNNING -> REBOOTING: route rest"} {
		enriched := strings.Replace(want, " ", ") ", 1)
		if !strings.Contains(got, want) && !strings.Contains(got, enriched) {
			t.Fatalf("dry run lacks %q:\n%s", want, got)
		}
	}
	for _, want := range []string{
		"16 events in the last 1h0m0s",
		"--- route stops -> sink ops (wecom), part 1 of 1 ---\n**12 instances STOPPED in prod / ap-guangzhou**",
		"--- route rest -> sink chat (slack), part 1 of 1 ---\n*2 instances rebooted in prod / ap-guangzhou*",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TOPSECRET") {
		t.Fatalf("dry run shows a webhook URL:\n%s", got)
	}
	if got := len(r.wecom.Messages()) + len(r.slack.Messages()); got != 3 {
		t.Fatalf("the dry run sent something: rooms have %d messages", got)
	}
}
