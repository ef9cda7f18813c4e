package main

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readmeNotifyExample is the README's notify example.
func readmeNotifyExample(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "<!-- notify-example -->\n```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no notify example")
	}
	return block
}

func TestREADMENotifyExampleLoadsAndHidesItsURLs(t *testing.T) {
	block := readmeNotifyExample(t)
	if n := strings.Count(strings.TrimSpace(block), "\n") + 1; n > 10 {
		t.Fatalf("the README's notify example is %d lines, want at most 10", n)
	}
	raw := "accounts: [{name: prod, regions: [ap-guangzhou]}]\n" + block
	cfg, err := ParseConfig([]byte(raw), env(map[string]string{
		"WECOM_ROBOT_URL":   "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=TOPSECRET",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/TOPSECRET",
	}))
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	if !cfg.Notify.Enabled() {
		t.Fatal("the example enables no notifier")
	}
	routes, err := cfg.Notify.routes()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(routes), 3; got != want {
		t.Fatalf("%d routes, want %d", got, want)
	}
	if got, want := routes[1].GroupWait.String(), "10s"; got != want {
		t.Fatalf("group_wait left out = %s, want %s", got, want)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "TOPSECRET") || strings.Contains(fmtAll(cfg), "TOPSECRET") {
		t.Fatalf("check-config output shows a webhook URL:\n%s", out)
	}
}
