package main

import (
	"encoding/json"
	"fmt"
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

// TestErrorCodeLabelsAreBounded: however many distinct (well-formed) codes
// a server invents, the requests metric gets at most maxCodes of them plus
// one overflow label; every request is still counted.
func TestErrorCodeLabelsAreBounded(t *testing.T) {
	m := newMetrics(nil)
	const n = maxCodes + 50
	for i := range n {
		m.Request("a", "DescribeInstancesStatus", fmt.Sprintf("Invented.Code%d", i), time.Millisecond)
	}
	m.Request("a", "DescribeInstancesStatus", "RequestLimitExceeded.UinLimitExceeded", time.Millisecond)
	m.Request("a", "DescribeInstancesStatus", "AuthFailure.SignatureFailure", time.Millisecond)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series, total, throttles float64
	labels := map[string]bool{}
	for _, f := range families {
		switch f.GetName() {
		case "cvmwatch_api_requests_total":
			for _, s := range f.GetMetric() {
				series++
				total += s.GetCounter().GetValue()
				for _, l := range s.GetLabel() {
					if l.GetName() == "code" {
						labels[l.GetValue()] = true
					}
				}
			}
		case "cvmwatch_api_throttles_total":
			for _, s := range f.GetMetric() {
				throttles += s.GetCounter().GetValue()
			}
		}
	}
	// Past the cap, codes of alerted families keep their family's name, so
	// throttling and auth alerts still match them.
	if series != maxCodes+3 || total != n+2 {
		t.Fatalf("%v series counting %v requests; want %d series (the cap, the overflow, two families) counting %d", series, total, maxCodes+3, n+2)
	}
	if !labels["AuthFailure"] || !labels["RequestLimitExceeded"] || !labels[codeOverflow] {
		t.Fatalf("labels past the cap: want AuthFailure, RequestLimitExceeded and %s among %d", codeOverflow, len(labels))
	}
	if throttles != 1 {
		t.Fatalf("throttles = %v, want 1 (counted by the code, not the label)", throttles)
	}
}
