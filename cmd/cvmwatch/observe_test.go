package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestMetricsAndHealthFollowTheLoop(t *testing.T) {
	h := newHarness(t, 120)
	now := time.Now()
	handler := newHTTPHandler(h.d.watcher, h.d.metrics, h.d.store, func() time.Time { return now })

	if code, body := get(t, handler, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no complete scan yet") {
		t.Fatalf("/readyz before any scan = %d %s", code, body)
	}
	h.scanAndRelay()
	id := h.running(1)[0]
	h.sim.SetState(id, "STOPPED")
	h.scanAndRelay()
	now = time.Now()

	code, body := get(t, handler, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`cvmwatch_events_total{account="prod",from="RUNNING",region="ap-guangzhou",to="STOPPED"} 1`,
		`cvmwatch_scans_total{account="prod",complete="true",region="ap-guangzhou"} 2`,
		`cvmwatch_api_requests_total{account="prod",action="DescribeInstancesStatus",code="OK"} 4`,
		`cvmwatch_outbox_depth{account="prod",region="ap-guangzhou"} 0`,
		`cvmwatch_relay_published_total{account="prod",region="ap-guangzhou"} 1`,
		`cvmwatch_nats_connected 1`,
		`cvmwatch_build_info{version=`,
		`cvmwatch_scan_duration_seconds_bucket{account="prod",complete="true",region="ap-guangzhou",le=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, id) {
		t.Errorf("an instance ID is a metric label")
	}

	code, body = get(t, handler, "/readyz")
	var ready struct {
		Status  string
		Targets []targetHealth
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != http.StatusOK || ready.Status != "ready" {
		t.Fatalf("/readyz after complete scans = %d %s (%v)", code, body, err)
	}
	if got := ready.Targets[0].ByState["STOPPED"]; got < 1 {
		t.Errorf("byState = %v, want STOPPED counted", ready.Targets[0].ByState)
	}

	// Three intervals without a complete scan: not ready, and it says why.
	now = now.Add(4 * h.d.watcher.Interval())
	if code, body := get(t, handler, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "more than 3 intervals") {
		t.Fatalf("/readyz with a stale scan = %d %s", code, body)
	}
	if code, _ := get(t, handler, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
}

func TestReadyzReportsAnOutboxThatDoesNotDrain(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()
	h.stopNATS()
	h.sim.SetState(h.running(1)[0], "STOPPED")
	h.scan()
	if age := h.d.metrics.oldestAge(); age <= 0 {
		t.Errorf("outbox_oldest_age_seconds = %v with an event waiting, want > 0", age)
	}
	now := time.Now().Add(3*h.d.watcher.Interval() + time.Minute)
	// The scan is fresh enough at `now` only if we pretend it just ran; move
	// LastComplete's judgement out of the way by checking the outbox reason.
	st := h.d.watcher.Status()[0]
	st.LastComplete = now
	got := judge(st, h.d.watcher.Interval(), now)
	if got.Ready || !strings.Contains(got.Reason, "outbox not draining: 1 events") {
		t.Fatalf("judge = %+v, want not ready because the outbox does not drain", got)
	}
}
