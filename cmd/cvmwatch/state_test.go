package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestStateFromTheDaemonAPIAndFromTheDatabase(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()
	id := h.running(1)[0]
	h.setState(id, "STOPPED")
	h.scanAndRelay()

	srv := httptest.NewServer(newHTTPHandler(h.d.watcher, h.d.metrics, h.d.store, time.Now, nil))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), []string{"state", "--url", srv.URL, "--instances", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("state exited %d: %s", code, errOut.String())
	}
	var got struct {
		Source  string
		Targets []targetHealth
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("state --json: %v\n%s", err, out.String())
	}
	if len(got.Targets) != 1 || len(got.Targets[0].Instances) != 120 || got.Targets[0].PagesTotal != 2 {
		t.Fatalf("state = %+v", got.Targets)
	}
	found := false
	for _, v := range got.Targets[0].Instances {
		if v.InstanceID == id {
			found = v.State == "STOPPED" && v.Sequence == 1
		}
	}
	if !found {
		t.Errorf("instance %s not listed as STOPPED #1", id)
	}

	// With the daemon gone, state reads the database itself.
	h.close()
	cfgPath := filepath.Join(t.TempDir(), "cvmwatch.yaml")
	h.cfg.HTTP.Listen = "127.0.0.1:1" // nobody listens there
	raw, err := yaml.Marshal(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := Run(context.Background(), []string{"state", "--config", cfgPath}, &out, &errOut); code != 0 {
		t.Fatalf("state from the database exited %d: %s", code, errOut.String())
	}
	text := out.String()
	for _, want := range []string{"cvmwatch.db", "prod/ap-guangzhou", "120", "STOPPED", "daemon not running"} {
		if !strings.Contains(text, want) {
			t.Errorf("state output lacks %q:\n%s", want, text)
		}
	}
}

// TestStateShowsAScanInProgress: while a long scan runs, state shows its
// pages done out of the total (here as the scanner reports them).
func TestStateShowsAScanInProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20)
	h.scanAndRelay()
	h.d.metrics.Progress(h.target, 3, 10)
	srv := httptest.NewServer(newHTTPHandler(h.d.watcher, h.d.metrics, h.d.store, time.Now, nil))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), []string{"state", "--url", srv.URL}, &out, &errOut); code != 0 {
		t.Fatalf("state exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "3/10 pages") {
		t.Fatalf("state does not show the scan in progress:\n%s", out.String())
	}
}
