package cvmsim_test

import (
	"strings"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// TestAdminClientSeesWhatTheServerDoes: the client functions for a
// simulator running elsewhere return what the server's own methods return,
// and a refused request is an error that says why.
func TestAdminClientSeesWhatTheServerDoes(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 5})
	ctx := t.Context()
	fleet := srv.Instances("")
	if len(fleet) == 0 {
		t.Fatal("the simulator has no instance")
	}
	if err := srv.SetState(fleet[0].InstanceId, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	if _, err := MustClient(t, srv, clientConfig{}).DescribeInstancesStatus(statusReq(nil, nil)); err != nil {
		t.Fatal(err) // one API request for the stats to count
	}

	history, err := cvmsim.FetchHistory(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(history), len(srv.History()); got != want || got == 0 {
		t.Fatalf("FetchHistory: %d changes, the server has %d (want more than 0)", got, want)
	}
	ops, err := cvmsim.FetchOperations(ctx, srv.URL())
	if err != nil || ops == nil {
		t.Fatalf("FetchOperations = %v, %v; want an empty slice, never nil", ops, err)
	}

	if err := cvmsim.SetChurnAt(ctx, srv.URL(), 2.5); err != nil {
		t.Fatal(err)
	}
	if got := srv.Churn(); got != 2.5 {
		t.Fatalf("churn after SetChurnAt(2.5) = %v", got)
	}
	if err := cvmsim.SetChurnAt(ctx, srv.URL(), -1); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("SetChurnAt(-1) = %v, want the server's refusal", err)
	}
	if err := cvmsim.SetChurnAt(ctx, srv.URL(), 0); err != nil || srv.Churn() != 0 {
		t.Fatalf("SetChurnAt(0) = %v, churn %v", err, srv.Churn())
	}

	st, err := cvmsim.FetchStats(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	want := srv.Stats()
	action := cvmsim.ActionDescribeInstancesStatus
	if st.Requests[action] != 1 || want.Requests[action] != 1 || st.Throttled != want.Throttled || len(st.Requests) != len(want.Requests) {
		t.Fatalf("FetchStats = %+v, the server's = %+v", st, want)
	}
}
