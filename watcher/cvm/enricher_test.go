package cvm_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

var enrTarget = watcher.Target{Account: "test", Region: testRegion}

// mustNewEnricher returns an Enricher of testRegion on srv through the SDK.
func mustNewEnricher(tb testing.TB, srv *cvmsim.Server, refresh *cvm.Limiter) *cvm.Enricher {
	tb.Helper()
	client, err := cvm.NewClient(cvm.ClientConfig{Region: testRegion, Endpoint: srv.URL(),
		Credential: common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey)})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := cvm.NewEnricher(cvm.EnricherConfig{Target: enrTarget, Client: client, Limiter: cvm.NewLimiter(10000, 1),
		RefreshLimiter: refresh, Retry: cvm.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestEnricherMapsEveryField(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 3, Seed: 5})
	created := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	spec := cvmsim.Instance{
		InstanceId: "ins-abcdef12", InstanceState: "RUNNING", Region: testRegion, Zone: "ap-guangzhou-3",
		InstanceName: "web-01", InstanceType: "S5.MEDIUM4",
		Tags:               []cvmsim.Tag{{Key: "team", Value: "web"}, {Key: "env", Value: "prod"}},
		PrivateIpAddresses: []string{"10.0.0.12"}, PublicIpAddresses: []string{"203.0.113.7"},
		InstanceChargeType: "PREPAID", CreatedTime: created, ExpiredTime: created.AddDate(1, 0, 0),
		RestrictState: "NORMAL", IsolatedSource: "NOTISOLATED",
	}
	if err := srv.CreateInstance(spec); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Update(spec.InstanceId, cvmsim.Update{State: "STOPPED", Operation: "StopInstances",
		OperationError: "disk busy"}); err != nil {
		t.Fatal(err)
	}
	var truth cvmsim.Instance
	for _, in := range srv.Instances(testRegion) {
		if in.InstanceId == spec.InstanceId {
			truth = in
		}
	}
	e := mustNewEnricher(t, srv, nil)
	got, err := e.Describe(t.Context(), []string{spec.InstanceId, "ins-00000000", "not an id"})
	if err == nil {
		t.Fatal("Describe said nothing of an ID it could not ask")
	}
	if len(got) != 1 {
		t.Fatalf("Describe = %+v, want the one existing instance", got)
	}
	want := watcher.Enrichment{
		InstanceID: spec.InstanceId, State: watcher.State(truth.InstanceState),
		Instance: watcher.Instance{Name: "web-01", Zone: "ap-guangzhou-3", InstanceType: "S5.MEDIUM4",
			PrivateIPs: []string{"10.0.0.12"}, PublicIPs: []string{"203.0.113.7"},
			Tags:       []watcher.Tag{{Key: "team", Value: "web"}, {Key: "env", Value: "prod"}},
			ChargeType: "PREPAID", CreatedTime: "2026-10-01T08:00:00Z", ExpiredTime: "2027-10-01T08:00:00Z",
			RestrictState: "NORMAL", IsolatedSource: "NOTISOLATED"},
		Operation: watcher.Operation{Name: "StopInstances", State: truth.LatestOperationState,
			RequestID: truth.LatestOperationRequestId, Error: truth.LatestOperationErrorMsg},
	}
	if truth.LatestOperationRequestId == "" || truth.LatestOperationErrorMsg != "disk busy" {
		t.Fatalf("simulator truth has no operation to compare: %+v", truth)
	}
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("Describe =\n %+v\nwant\n %+v", got[0], want)
	}
}

func TestEnricherListPagesThroughEveryInstance(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 250, Seed: 5})
	e := mustNewEnricher(t, srv, cvm.NewLimiter(1000, 1))
	seen := map[string]bool{}
	pages := 0
	err := e.List(t.Context(), func(page []watcher.Enrichment) error {
		pages++
		for _, en := range page {
			if seen[en.InstanceID] || en.FetchedAt.IsZero() || en.Instance.Name == "" {
				t.Fatalf("item %+v: repeated, or without FetchedAt or name", en)
			}
			seen[en.InstanceID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(seen), len(truth(srv)); got != want || pages != 3 {
		t.Fatalf("List saw %d instances in %d pages, want %d in 3", got, pages, want)
	}
}

func TestEnricherDescribesEveryIDAsked(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 250, Seed: 5})
	var ids []string
	for id := range truth(srv) {
		ids = append(ids, id)
	}
	got, err := mustNewEnricher(t, srv, nil).Describe(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, en := range got {
		seen[en.InstanceID] = true
	}
	if len(seen) != len(ids) || len(got) != len(ids) {
		t.Fatalf("described %d (%d distinct) of %d instances asked in batches of 100", len(got), len(seen), len(ids))
	}
}

func TestEnricherHostileAndNullValuesAreData(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 5, Seed: 5})
	e := mustNewEnricher(t, srv, nil)
	ids := make([]string, 0, 5)
	for id := range truth(srv) {
		ids = append(ids, id)
	}
	for _, kind := range []cvmsim.FaultKind{cvmsim.FaultHostileValues, cvmsim.FaultNullDetails} {
		id := srv.AddFault(cvmsim.Fault{Kind: kind, Action: cvm.ActionDescribeInstances})
		got, err := e.Describe(t.Context(), ids)
		srv.RemoveFault(id)
		if err != nil || len(got) != len(ids) {
			t.Fatalf("%s: Describe = %d items, %v; want all %d", kind, len(got), err, len(ids))
		}
		for _, en := range got {
			b := en.Bound()
			ev := watcher.Event{ID: "x", Target: enrTarget, InstanceID: en.InstanceID, From: "RUNNING", To: "STOPPED",
				Sequence: 1, ObservedAt: time.Now(), Instance: &b.Instance, Operation: &b.Operation}
			body, err := watcher.MarshalCloudEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			back, err := watcher.UnmarshalCloudEvent(body)
			if err != nil {
				t.Fatalf("%s: the event does not decode: %v", kind, err)
			}
			if kind == cvmsim.FaultHostileValues && (len(back.Instance.Tags) == 0 || len(back.Instance.Tags) > watcher.MaxTags || !back.Instance.Truncated) {
				t.Fatalf("hostile values: %d tags, truncated %v; want some, at most %d, and the cut said",
					len(back.Instance.Tags), back.Instance.Truncated, watcher.MaxTags)
			}
			if s, err := back.Subject("cvm"); err != nil || s != "cvm.state.test."+testRegion+"."+en.InstanceID+".RUNNING.STOPPED" {
				t.Fatalf("%s: subject %q, %v: values from the API reached the subject", kind, s, err)
			}
		}
	}
}

// enrichedLoop is a watcher on the memory store over srv, with the scanner
// and the enricher both through the SDK.
func enrichedLoop(t *testing.T, srv *cvmsim.Server, timeout time.Duration) (*watcher.Watcher, *store.Memory) {
	t.Helper()
	s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 2})
	st := store.NewMemory()
	w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Interval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EnrichTimeout: timeout},
		[]watcher.TargetSource{{Target: watcher.Target{Account: "test", Region: testRegion}, Source: s, Enricher: mustNewEnricher(t, srv, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

func scanOnce(t *testing.T, w *watcher.Watcher) watcher.Commit {
	t.Helper()
	c, err := w.ScanOnce(t.Context(), watcher.Target{Account: "test", Region: testRegion})
	if err != nil {
		t.Fatalf("ScanOnce: %v", err)
	}
	return c
}

func eventOf(t *testing.T, c watcher.Commit, id string) watcher.Event {
	t.Helper()
	for _, e := range c.Events {
		if e.InstanceID == id {
			return e
		}
	}
	t.Fatalf("no event of %s in %+v", id, c.Events)
	return watcher.Event{}
}

func TestNewOperationAttributedStaleOneNot(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 4, Seed: 9})
	w, _ := enrichedLoop(t, srv, 10*time.Second)
	scanOnce(t, w)
	if err := w.RefreshOnce(t.Context(), watcher.Target{Account: "test", Region: testRegion}); err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, in := range srv.Instances(testRegion) {
		if in.InstanceState == "RUNNING" {
			running = append(running, in.InstanceId)
		}
	}
	if len(running) < 2 {
		t.Fatalf("fleet has %d RUNNING instances, want 2", len(running))
	}
	operated, plain := running[0], running[1]
	name := "renamed"
	if _, err := srv.Update(operated, cvmsim.Update{State: "STOPPED", Operation: "StopInstances", Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Update(plain, cvmsim.Update{State: "STOPPED"}); err != nil { // no operation: the latest is stale
		t.Fatal(err)
	}
	var reqID string
	for _, in := range srv.Instances(testRegion) {
		if in.InstanceId == operated {
			reqID = in.LatestOperationRequestId
		}
	}
	c := scanOnce(t, w)
	e := eventOf(t, c, operated)
	if e.Instance == nil || e.Instance.Name != "renamed" {
		t.Fatalf("operated event's instance = %+v, want the current name", e.Instance)
	}
	if e.Operation == nil || e.Operation.Name != "StopInstances" || e.Operation.RequestID != reqID || reqID == "" {
		t.Fatalf("operated event's operation = %+v, want StopInstances %s", e.Operation, reqID)
	}
	if p := eventOf(t, c, plain); p.Instance == nil || p.Operation != nil {
		t.Fatalf("plain change: instance %+v, operation %+v; want the instance and no stale operation", p.Instance, p.Operation)
	}
}

func TestEnrichmentFailuresNeverLoseEvents(t *testing.T) {
	tests := []struct {
		name  string
		fault cvmsim.Fault
		auth  bool
	}{
		{"throttling storm", cvmsim.Fault{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded"}, false},
		{"missing permission", cvmsim.Fault{Kind: cvmsim.FaultError, Code: "AuthFailure.UnauthorizedOperation"}, true},
		{"timeout", cvmsim.Fault{Kind: cvmsim.FaultTimeout}, false},
		{"server errors", cvmsim.Fault{Kind: cvmsim.FaultHTML502}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 4, Seed: 9})
			w, st := enrichedLoop(t, srv, time.Second)
			scanOnce(t, w)
			var id string
			for _, in := range srv.Instances(testRegion) {
				if in.InstanceState == "RUNNING" {
					id = in.InstanceId
				}
			}
			if err := srv.SetState(id, "STOPPED"); err != nil {
				t.Fatal(err)
			}
			f := tt.fault
			f.Action = cvm.ActionDescribeInstances
			srv.AddFault(f)
			c := scanOnce(t, w)
			if e := eventOf(t, c, id); e.Instance != nil {
				t.Fatalf("event enriched through a fault: %+v", e.Instance)
			}
			depth, _, err := st.OutboxStats(t.Context(), enrTarget)
			if err != nil || depth != 1 {
				t.Fatalf("outbox depth = %d, %v; want the event committed", depth, err)
			}
			s := w.Status()[0]
			if s.EnrichError == "" || s.LastError != "" {
				t.Fatalf("status = %+v, want an enrichment problem and no cycle error", s)
			}
			dctx, cancel := context.WithTimeout(t.Context(), time.Second)
			_, derr := mustNewEnricher(t, srv, nil).Describe(dctx, []string{id})
			cancel()
			if auth := errors.Is(derr, watcher.ErrAuth); derr == nil || auth != tt.auth {
				t.Fatalf("Describe error %v: auth %v, want %v", derr, auth, tt.auth)
			}
			srv.ClearFaults()
			if err := srv.SetState(id, "RUNNING"); err != nil {
				t.Fatal(err)
			}
			if e := eventOf(t, scanOnce(t, w), id); e.Instance == nil {
				t.Fatal("not enriched again once the fault is gone")
			}
		})
	}
}
