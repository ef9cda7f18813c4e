package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return rec.Code, string(body)
}

func TestMetricsAndHealthFollowTheLoop(t *testing.T) {
	h := newHarness(t, 120)
	now := time.Now()
	handler := newHTTPHandler(h.d.watcher, h.d.metrics, h.d.store, func() time.Time { return now }, nil)

	if code, body := get(t, handler, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no complete scan yet") {
		t.Fatalf("/readyz before any scan = %d %s", code, body)
	}
	h.scanAndRelay()
	id := h.running(1)[0]
	if err := h.sim.SetState(id, "STOPPED"); err != nil {
		t.Fatal(err)
	}
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
		`cvmwatch_commit_duration_seconds_count{account="prod",region="ap-guangzhou"} 2`,
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
	if got, want := len(ready.Targets), 1; got != want {
		t.Fatalf("/readyz lists %d targets, want %d: %s", got, want, body)
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

// TestReadyzReportsAnOutboxThatDoesNotDrain asks the daemon's own health
// server, while it runs, about a target that scans fine but whose outbox has
// not drained for a day (NATS unreachable since): /readyz must be 503 and say
// why. The day is not waited for: the event is aged in the store, as if the
// previous run had committed it a day ago and the daemon restarted now.
func TestReadyzReportsAnOutboxThatDoesNotDrain(t *testing.T) {
	h := newHarness(t, 120)
	h.scanAndRelay()
	h.stopNATS()
	if err := h.sim.SetState(h.running(1)[0], "STOPPED"); err != nil {
		t.Fatal(err)
	}
	if got, want := len(h.scan().Events), 1; got != want {
		t.Fatalf("scan with NATS down committed %d events, want %d", got, want)
	}
	h.close()
	const age = 24 * time.Hour // far beyond 3 intervals of 1h
	ageOutbox(t, filepath.Join(h.cfg.DataDir, "cvmwatch.db"), h.target, age)

	h.cfg.Poll.Jitter = 0.9 // of a 1h interval: the loop does not scan during the test
	h.open()
	// A complete scan just now: the scan is fresh, only the outbox is stale.
	if c := h.scan(); !c.Meta.LastComplete.After(time.Now().Add(-time.Hour)) {
		t.Fatalf("scan after the restart: last complete %v, want now", c.Meta.LastComplete)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	resp, err := http.Get("http://" + h.d.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Fatalf("/readyz = %d %s, want %d", got, body, want)
	}
	var ready struct {
		Status  string
		Targets []targetHealth
	}
	if err := json.Unmarshal(body, &ready); err != nil {
		t.Fatalf("/readyz body %s: %v", body, err)
	}
	if got, want := ready.Status, "not ready"; got != want {
		t.Errorf("/readyz status = %q, want %q", got, want)
	}
	if got, want := len(ready.Targets), 1; got != want {
		t.Fatalf("/readyz lists %d targets, want %d: %s", got, want, body)
	}
	th := ready.Targets[0]
	if th.Ready || !strings.HasPrefix(th.Reason, "outbox not draining: 1 events, oldest 24h") {
		t.Errorf("/readyz target = ready %v, reason %q; want not ready because the outbox does not drain", th.Ready, th.Reason)
	}
	if got, want := th.OutboxDepth, 1; got != want {
		t.Errorf("outboxDepth = %d, want %d", got, want)
	}
	if th.OutboxOldestAge < age.Seconds() {
		t.Errorf("outboxOldestAgeSeconds = %v, want at least %v", th.OutboxOldestAge, age.Seconds())
	}
}

// ageOutbox moves the ObservedAt of every event in target's outbox back by
// age, keeping its id and place: the outbox a run that committed them age
// ago would have left.
func ageOutbox(t *testing.T, path string, target watcher.Target, age time.Duration) {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	entries, err := st.Outbox(ctx, target, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no outbox entry to age")
	}
	meta, err := st.Load(ctx, target, func(watcher.Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Acknowledge(ctx, target, entries[len(entries)-1].Seq); err != nil {
		t.Fatal(err)
	}
	var events []watcher.Event
	for _, e := range entries {
		ev := e.Event
		ev.ObservedAt = ev.ObservedAt.Add(-age)
		if !ev.PreviousObservedAt.IsZero() {
			ev.PreviousObservedAt = ev.PreviousObservedAt.Add(-age)
		}
		events = append(events, ev)
	}
	if _, _, err := st.Commit(ctx, target, watcher.Commit{Events: events, Meta: meta}); err != nil {
		t.Fatal(err)
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

// TestOperationEventsAreCountedApartFromTransitions: an operation event (no
// visible state change) is not a RUNNING -> RUNNING transition; it is counted
// by where it was seen, and transitions keep their from/to counts.
func TestOperationEventsAreCountedApartFromTransitions(t *testing.T) {
	m := newMetrics(nil)
	tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	op := watcher.Event{Target: tg, InstanceID: "ins-aaaaaaaa", From: watcher.StateRunning, To: watcher.StateRunning,
		Operation: &watcher.Operation{Name: "RebootInstances", State: "SUCCESS", RequestID: "req-1"}}
	if !op.IsOperation() {
		t.Fatal("the test's operation event is not one")
	}
	stop := watcher.Event{Target: tg, InstanceID: "ins-bbbbbbbb", From: watcher.StateRunning, To: watcher.StateStopped, Sequence: 2}
	m.ScanCommitted(tg, watcher.Scan{Complete: true}, watcher.Commit{Events: []watcher.Event{op, stop}}, nil, 0)
	m.RefreshCommitted(tg, watcher.Commit{Events: []watcher.Event{op, op}})
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			for _, l := range s.GetLabel() {
				if l.GetName() == "from" || l.GetName() == "to" || l.GetName() == "source" {
					key += "," + l.GetValue()
				}
			}
			counts[key] += s.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"cvmwatch_events_total,RUNNING,STOPPED":   1,
		"cvmwatch_events_total,RUNNING,RUNNING":   0,
		"cvmwatch_operation_events_total,scan":    1,
		"cvmwatch_operation_events_total,refresh": 2,
	} {
		if got := counts[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}
