package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// Distinctive secrets: if any of these shows up in any output, it leaked.
const (
	leakTencentKey = "SEKRIT-tencent-7f3a1c"
	leakNATSToken  = "SEKRIT-natstoken-9b2c4e"
	leakNATSPass   = "SEKRIT-natspass-5d6e7f"
	leakSimKey     = "SEKRIT-simkey-0a1b2c"
	rightNATSToken = "the-right-token-1234"
)

var leaks = []string{leakTencentKey, leakNATSToken, leakNATSPass, leakSimKey}

func assertNoLeak(t *testing.T, what, output string) {
	t.Helper()
	for _, s := range leaks {
		if strings.Contains(output, s) {
			t.Errorf("%s printed a secret (%s):\n%s", what, s, output)
		}
	}
}

// run executes one command line with a deadline and returns all it printed.
func runFor(ctx context.Context, d time.Duration, args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var w syncBuffer
	code := Run(ctx, args, &w, &w)
	return code, w.String()
}

// TestNoCommandPrintsASecret runs every command, and the daemon through
// failures (wrong Tencent key, NATS refusing its token, bad configs), with
// distinctive secret values, and greps everything they print.
func TestNoCommandPrintsASecret(t *testing.T) {
	ctx := t.Context()
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 20, RateLimit: -1,
		Credentials: map[string]string{"AKIDleaktest": "the-real-sim-key"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	natsDir := t.TempDir()
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: natsDir, Token: rightNATSToken})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	t.Setenv("LEAK_TENCENT_KEY", leakTencentKey)
	t.Setenv("LEAK_NATS_TOKEN", leakNATSToken)

	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Wrong Tencent key (from the environment) and a NATS token the server refuses.
	badNATS := write("bad-nats.yaml", fmt.Sprintf(`data_dir: %s
accounts:
  - name: prod
    regions: [ap-guangzhou]
    endpoint: %s
    credentials: {secret_id: AKIDleaktest, secret_key: "${LEAK_TENCENT_KEY}"}
nats:
  url: %s
  token: "${LEAK_NATS_TOKEN}"
http: {listen: "127.0.0.1:0"}
`, filepath.Join(dir, "d1"), sim.URL(), ns.ClientURL()))
	// NATS accepts (right token), Tencent refuses the key: the daemon runs
	// and logs auth failures for a while.
	badKey := write("bad-key.yaml", fmt.Sprintf(`data_dir: %s
accounts:
  - name: prod
    regions: [ap-guangzhou]
    endpoint: %s
    credentials: {secret_id: AKIDleaktest, secret_key: %s}
poll: {interval: 1s}
nats:
  url: %s
  token: %s
  password: ""
http: {listen: "127.0.0.1:0"}
log: {level: debug}
`, filepath.Join(dir, "d2"), sim.URL(), leakTencentKey, ns.ClientURL(), rightNATSToken))
	invalid := write("invalid.yaml", fmt.Sprintf(`accounts:
  - name: "bad name"
    regions: []
    credentials: {secret_id: "", secret_key: %s}
nats: {user: someone, password: %s, token: %s}
`, leakTencentKey, leakNATSPass, leakNATSToken))
	readable := write("readable.yaml", fmt.Sprintf("accounts:\n  - name: prod\n    regions: [ap-guangzhou]\n    credentials: {secret_id: AKIDx, secret_key: %s}\n", leakTencentKey))
	os.Chmod(readable, 0o644)

	cases := [][]string{
		{"check-config", "--config", badKey},
		{"check-config", "--config", invalid},
		{"check-config", "--config", readable},
		{"run", "--config", badNATS},
		{"run", "--config", invalid},
		{"state", "--config", badKey},
		{"sim", "--credentials", "AKIDbad" + leakSimKey},
		{"sim", "--listen", "127.0.0.1:0", "--credentials", "AKIDsim:" + leakSimKey, "--bogus-flag"},
		{"tail", "--server", ns.ClientURL(), "--token", leakNATSToken},
		{"history", "ins-aaaaaaaa", "--server", ns.ClientURL(), "--token", leakNATSToken},
		{"history", "ins-aaaaaaaa", "--server", "nats://someone:" + leakNATSPass + "@127.0.0.1:1"},
	}
	for _, args := range cases {
		code, out := runFor(ctx, 20*time.Second, args...)
		if code == 0 && args[0] != "check-config" {
			t.Errorf("%v succeeded, want a failure to examine", args)
		}
		assertNoLeak(t, strings.Join(args[:1], " "), out)
		if testing.Verbose() {
			t.Logf("%v -> %d\n%s", args[:1], code, out)
		}
	}
	// --help of every command.
	for _, c := range newRootCommand(nil, nil).Commands() {
		_, out := runFor(ctx, 5*time.Second, c.Name(), "--help")
		assertNoLeak(t, c.Name()+" --help", out)
	}

	// The daemon itself, running into Tencent auth failures, with its
	// metrics scraped while it runs.
	var logs syncBuffer
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- Run(runCtx, []string{"run", "--config", badKey}, &logs, &logs) }()
	stopped := false
	t.Cleanup(func() { // on a failure path too: the daemon must not outlive the test
		cancel()
		if !stopped {
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "AuthFailure") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the daemon never logged the auth failure:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Scrape the metrics of the failing daemon too.
	m := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		cancel()
		t.Fatalf("no http address in the log:\n%s", logs.String())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	assertNoLeak(t, "/metrics", string(body))
	if !strings.Contains(string(body), `code="AuthFailure.SignatureFailure"`) {
		t.Errorf("/metrics does not count the auth failures")
	}
	cancel()
	<-done
	stopped = true
	assertNoLeak(t, "run (daemon logs)", logs.String())
	if !strings.Contains(logs.String(), "AuthFailure.SignatureFailure") {
		t.Errorf("the daemon's log does not say why it fails:\n%s", logs.String())
	}
}
