package cvmsim_test

import (
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// The churn goroutine runs on its own; this is the only test that waits for
// it, briefly. Its logic is tested with synthetic time in churn_internal_test.go.
func TestChurnRunsInTheBackground(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 10, Seed: 1, Churn: 40, DwellScale: 0.01})
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.History()) < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("history has %d changes after 5s of churn at 40/s", len(srv.History()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := MustClient(t, srv, clientConfig{})
	r := MustStatus(t, c, statusReq(nil, i64(100)))
	if *r.TotalCount == 0 {
		t.Fatal("empty fleet")
	}
}
