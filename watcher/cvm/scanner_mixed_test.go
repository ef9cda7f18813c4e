package cvm_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// describeFaults adds a fault of kind for DescribeInstances at every page
// offset but 0 (the order probe's) of a fleet of n.
func describeFaults(srv *cvmsim.Server, f cvmsim.Fault, n int) {
	f.Action = cvm.ActionDescribeInstances
	for off := cvm.PageSize; off < n; off += cvm.PageSize {
		f.Offset = intp(off)
		srv.AddFault(f)
	}
}

// fired sums the firings of the simulator's faults still listed.
func fired(srv *cvmsim.Server) int {
	n := 0
	for _, f := range srv.Faults() {
		n += f.Fired
	}
	return n
}

// checkDescribed checks Scan.Described against the scan and the simulator:
// sorted, one per instance, each with the state observed and the
// simulator's name and zone, fetched during the scan, one per item of the
// pages read through DescribeInstances.
func checkDescribed(t *testing.T, srv *cvmsim.Server, scan watcher.Scan) {
	t.Helper()
	obs := observed(scan)
	byID := map[string]cvmsim.Instance{}
	for _, in := range srv.Instances(testRegion) {
		byID[in.InstanceId] = in
	}
	if !slices.IsSortedFunc(scan.Described, func(a, b watcher.Enrichment) int { return strings.Compare(a.InstanceID, b.InstanceID) }) {
		t.Fatal("Described is not sorted by InstanceID")
	}
	end := scan.Stats.Started.Add(scan.Stats.Duration)
	for i, e := range scan.Described {
		if i > 0 && scan.Described[i-1].InstanceID == e.InstanceID {
			t.Fatalf("Described lists %s twice", e.InstanceID)
		}
		if got, want := string(e.State), obs[e.InstanceID]; got != want {
			t.Fatalf("Described %s in state %q, observed %q", e.InstanceID, got, want)
		}
		in := byID[e.InstanceID]
		if e.Instance.Name != in.InstanceName || e.Instance.Zone != in.Zone {
			t.Fatalf("Described %s as %q in %q, simulator has %q in %q", e.InstanceID, e.Instance.Name, e.Instance.Zone, in.InstanceName, in.Zone)
		}
		if e.FetchedAt.Before(scan.Stats.Started) || e.FetchedAt.After(end) {
			t.Fatalf("Described %s fetched at %v, outside the scan [%v, %v]", e.InstanceID, e.FetchedAt, scan.Stats.Started, end)
		}
	}
}

func TestMixedScanEqualsAStatusOnlyScan(t *testing.T) {
	const n = 2000
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n, Seed: 7})
	// A slow DescribeInstancesStatus (19 pages take it about 2s) leaves
	// DescribeInstances, once its probe is back, pages to take.
	mixed, _ := mustNewScanner(t, srv, scannerOptions{rate: 10, describe: cvm.NewLimiter(1000, 1)})
	status, _ := mustNewScanner(t, srv, scannerOptions{rate: 1000})

	scan, err := mixed.Scan(t.Context())
	if err != nil || !scan.Complete {
		t.Fatalf("mixed Scan = complete %v, %v", scan.Complete, err)
	}
	if scan.Stats.DescribedPages == 0 || scan.Stats.DescribedPages == scan.Stats.Pages {
		t.Fatalf("%d of %d pages through DescribeInstances: the scan did not mix; the test proves nothing", scan.Stats.DescribedPages, scan.Stats.Pages)
	}
	if got, want := int64(scan.Stats.DescribedPages+1), srv.Stats().Requests[cvm.ActionDescribeInstances]; got != want {
		t.Errorf("%d DescribeInstances pages plus the order probe, simulator got %d requests", got-1, want)
	}
	single, err := status.Scan(t.Context())
	if err != nil {
		t.Fatalf("status-only Scan: %v", err)
	}
	if got, want := observed(scan), observed(single); !maps.Equal(got, want) {
		t.Fatalf("mixed scan saw %d instances, status-only scan %d (or states differ)", len(got), len(want))
	}
	if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
		t.Fatalf("mixed scan saw %d instances, truth has %d", len(got), len(want))
	}
	if scan.Stats.CountDrift || scan.Stats.Duplicates != 0 || len(single.Described) != 0 || single.Stats.DescribedPages != 0 {
		t.Errorf("stats: mixed %+v, status-only %+v with %d described", scan.Stats, single.Stats, len(single.Described))
	}
	if got, want := len(scan.Described), cvm.PageSize*scan.Stats.DescribedPages; got != want {
		t.Errorf("Described holds %d instances from %d pages, want %d", got, scan.Stats.DescribedPages, want)
	}
	checkDescribed(t, srv, scan)
}

// TestMixedScanValidatesDescribePages: hostile and null items of pages
// read through DescribeInstances are rejected as they are from
// DescribeInstancesStatus.
func TestMixedScanValidatesDescribePages(t *testing.T) {
	for _, kind := range []cvmsim.FaultKind{cvmsim.FaultHostileIDs, cvmsim.FaultNullFields, cvmsim.FaultUnknownState} {
		t.Run(string(kind), func(t *testing.T) {
			const n = 2000
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n})
			describeFaults(srv, cvmsim.Fault{Kind: kind, State: "BAD STATE"}, n)
			s, _ := mustNewScanner(t, srv, scannerOptions{rate: 10, describe: cvm.NewLimiter(1000, 1)})
			scan, err := s.Scan(t.Context())
			if (err == nil) != scan.Complete {
				t.Fatalf("Scan = complete %v with error %v", scan.Complete, err)
			}
			if fired(srv) == 0 || scan.Stats.DescribedPages == 0 {
				t.Fatalf("no fault fired on a DescribeInstances page (%d pages through it); the test proves nothing", scan.Stats.DescribedPages)
			}
			if scan.Stats.Rejected == 0 {
				t.Fatalf("no item rejected under %s", kind)
			}
			tr := truth(srv)
			for _, o := range scan.Observations {
				if err := watcher.ValidateObservation(o); err != nil {
					t.Errorf("invalid observation passed through: %v", err)
				}
				if tr[o.InstanceID] != string(o.State) {
					t.Errorf("observation %v is not true (truth %q)", o, tr[o.InstanceID])
				}
			}
			// An ID listed with an unusable state exists: Unreadable, never absent.
			for _, id := range scan.Unreadable {
				if _, ok := tr[id]; !ok {
					t.Errorf("unreadable %q does not exist", id)
				}
			}
			if kind == cvmsim.FaultUnknownState && len(scan.Unreadable) == 0 {
				t.Error("instances listed with a malformed state are not Unreadable")
			}
			checkDescribed(t, srv, scan)
		})
	}
}

func TestMixedScanFailedDescribePageIsIncomplete(t *testing.T) {
	const n = 2000
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n})
	describeFaults(srv, cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError"}, n)
	s, _ := mustNewScanner(t, srv, scannerOptions{rate: 10, attempts: 2, describe: cvm.NewLimiter(1000, 1)})
	scan, err := s.Scan(t.Context())
	if fired(srv) == 0 {
		t.Fatal("no DescribeInstances page was tried; the test proves nothing")
	}
	if !errors.Is(err, watcher.ErrIncomplete) || scan.Complete {
		t.Fatalf("Scan with failed DescribeInstances pages = complete %v, %v; want ErrIncomplete", scan.Complete, err)
	}
	if scan.Stats.PagesFailed == 0 {
		t.Errorf("no failed page counted: %+v", scan.Stats)
	}
	tr := truth(srv)
	for _, o := range scan.Observations {
		if tr[o.InstanceID] != string(o.State) {
			t.Errorf("observation %v differs from truth %q", o, tr[o.InstanceID])
		}
	}
}

func TestMixedScanThrottledDescribeSlowsOnlyDescribe(t *testing.T) {
	const n, ceiling, statusRate = 1000, 1000.0, 5.0
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n})
	describeFaults(srv, cvmsim.Fault{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded", Count: 1}, n)
	describe := cvm.NewLimiter(ceiling, 1)
	// DescribeInstancesStatus slow enough to leave pages to the other API,
	// fast enough that a halving would show (its floor is 0.5).
	s, status := mustNewScanner(t, srv, scannerOptions{rate: statusRate, attempts: 3, describe: describe})
	scan, err := s.Scan(t.Context())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if scan.Stats.Throttles == 0 {
		t.Fatal("no DescribeInstances page was throttled; the test proves nothing")
	}
	if got := describe.Rate(); got >= ceiling {
		t.Errorf("DescribeInstances limiter at %v after %d throttles, want below %v", got, scan.Stats.Throttles, ceiling)
	}
	if got := status.Rate(); got != statusRate {
		t.Errorf("DescribeInstancesStatus limiter at %v after throttles of DescribeInstances only, want %v", got, statusRate)
	}
	if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
		t.Fatalf("scan saw %d instances, want %d", len(got), len(want))
	}
}

// TestMixedScanPausesWhenTheAPIsListInAnotherOrder: the probe of page 0
// sees the other order, and no page goes through DescribeInstances.
func TestMixedScanPausesWhenTheAPIsListInAnotherOrder(t *testing.T) {
	const n = 1000
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultOtherOrder, Action: cvm.ActionDescribeInstances})
	s, _ := mustNewScanner(t, srv, scannerOptions{rate: 20, describe: cvm.NewLimiter(1000, 1)})
	for i := range 2 {
		scan, err := s.Scan(t.Context())
		if err != nil {
			t.Fatalf("scan %d: %v", i, err)
		}
		if scan.Stats.DescribedPages != 0 || len(scan.Described) != 0 || scan.Stats.CountDrift {
			t.Fatalf("scan %d read %d pages through an API of another order (drift %v)", i, scan.Stats.DescribedPages, scan.Stats.CountDrift)
		}
		if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
			t.Fatalf("scan %d saw %d instances, want %d", i, len(got), len(want))
		}
	}
	if got, want := srv.Stats().Requests[cvm.ActionDescribeInstances], int64(1); got != want {
		t.Fatalf("DescribeInstances requests = %d, want %d (one probe, then paused)", got, want)
	}
}

// TestMixedScanDriftPausesMixing: the order differs past page 0 only; the
// scan is flagged, proves no absence a lookup would not refute, and the
// next scan reads every page through DescribeInstancesStatus.
func TestMixedScanDriftPausesMixing(t *testing.T) {
	const n = 1000
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n})
	describeFaults(srv, cvmsim.Fault{Kind: cvmsim.FaultOtherOrder}, n)
	// One worker per API; each DescribeInstancesStatus page after page 0
	// takes 2s the first time, so DescribeInstances reads most pages.
	var slow []int
	for off := cvm.PageSize; off < n; off += cvm.PageSize {
		slow = append(slow, srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLatency, Action: cvm.ActionDescribeInstancesStatus,
			Offset: intp(off), Count: 1, Delay: cvmsim.Duration(2 * time.Second)}))
	}
	s, _ := mustNewScanner(t, srv, scannerOptions{concurrency: 1, describe: cvm.NewLimiter(1000, 1)})
	scan, err := s.Scan(t.Context())
	if (err == nil) != scan.Complete {
		t.Fatalf("Scan = complete %v with error %v", scan.Complete, err)
	}
	if scan.Stats.DescribedPages == 0 {
		t.Fatal("no page through DescribeInstances; the test proves nothing")
	}
	if !scan.Stats.CountDrift {
		t.Fatalf("pages of two orders add up without drift: %+v", scan.Stats)
	}
	tr := truth(srv)
	missed := missedBy(tr, observed(scan))
	if len(missed) == 0 {
		t.Fatal("the other order made paging miss nothing; the test proves nothing")
	}
	res, err := s.Lookup(t.Context(), missed)
	if err != nil || len(res.Absent) != 0 || len(res.Found) != len(missed) {
		t.Fatalf("lookup of %d instances the mixed scan missed: %d found, absent %v, %v", len(missed), len(res.Found), res.Absent, err)
	}
	for _, id := range slow {
		srv.RemoveFault(id)
	}
	before := srv.Stats().Requests[cvm.ActionDescribeInstances]
	next, err := s.Scan(t.Context())
	if err != nil || next.Stats.DescribedPages != 0 || next.Stats.CountDrift {
		t.Fatalf("scan after the drift: %d pages through DescribeInstances, drift %v, %v; want none, paused", next.Stats.DescribedPages, next.Stats.CountDrift, err)
	}
	if got := srv.Stats().Requests[cvm.ActionDescribeInstances]; got != before {
		t.Errorf("paused scan sent %d DescribeInstances requests", got-before)
	}
	if got, want := observed(next), tr; !maps.Equal(got, want) {
		t.Fatalf("scan after the pause saw %d instances, want %d", len(got), len(want))
	}
}

// TestMixedScanSurvivesAMissingDescribePermission: a credential without
// DescribeInstances keeps its scans complete.
func TestMixedScanSurvivesAMissingDescribePermission(t *testing.T) {
	const n = 500
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "AuthFailure.UnauthorizedOperation", Action: cvm.ActionDescribeInstances})
	s, _ := mustNewScanner(t, srv, scannerOptions{rate: 20, describe: cvm.NewLimiter(1000, 1)})
	for i := range 2 {
		scan, err := s.Scan(t.Context())
		if err != nil {
			t.Fatalf("scan %d without the DescribeInstances permission: %v", i, err)
		}
		if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
			t.Fatalf("scan %d saw %d instances, want %d", i, len(got), len(want))
		}
	}
	if got, want := srv.Stats().Requests[cvm.ActionDescribeInstances], int64(1); got != want {
		t.Fatalf("DescribeInstances requests = %d, want %d (one refused probe, then paused)", got, want)
	}
}
