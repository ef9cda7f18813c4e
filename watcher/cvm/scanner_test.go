package cvm_test

import (
	"context"
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

func TestScanListsEveryInstance(t *testing.T) {
	for _, n := range []int{0, 1, 99, 100, 101, 250, 1000} {
		srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: n, Seed: int64(n)})
		s, _ := mustNewScanner(t, srv, scannerOptions{})
		scan, err := s.Scan(t.Context())
		if err != nil {
			t.Fatalf("%d instances: Scan: %v", n, err)
		}
		if !scan.Complete {
			t.Fatalf("%d instances: scan not complete", n)
		}
		if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
			t.Fatalf("%d instances: scan saw %d instances, truth has %d (or states differ)", n, len(got), len(want))
		}
		wantPages := max(1, (n+cvm.PageSize-1)/cvm.PageSize)
		if got := scan.Stats.Pages; got != wantPages && got != wantPages+1 {
			t.Errorf("%d instances: %d pages, want %d", n, got, wantPages)
		}
		if scan.Stats.CountDrift || scan.Stats.Retries != 0 || scan.Stats.Rejected != 0 {
			t.Errorf("%d instances: unexpected stats %+v", n, scan.Stats)
		}
		if !slices.IsSortedFunc(scan.Observations, func(a, b watcher.Observation) int { return strings.Compare(a.InstanceID, b.InstanceID) }) {
			t.Errorf("%d instances: observations not sorted by ID", n)
		}
	}
}

func TestScanRetriesTransientFaults(t *testing.T) {
	faults := []cvmsim.Fault{
		{Kind: cvmsim.FaultError, Code: "InternalError"},
		{Kind: cvmsim.FaultError, Code: "InternalServerError"},
		{Kind: cvmsim.FaultError, Code: "ServiceUnavailable"},
		{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded"},
		{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded.UinLimitExceeded"},
		{Kind: cvmsim.FaultTruncated},
		{Kind: cvmsim.FaultNonJSON},
		{Kind: cvmsim.FaultHTML502},
		{Kind: cvmsim.FaultEmptyObject},
		{Kind: cvmsim.FaultEmptyResponse},
		{Kind: cvmsim.FaultTimeout},
	}
	for _, f := range faults {
		t.Run(string(f.Kind)+f.Code, func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 300})
			// Only the timeout fault needs a short request timeout (its hang
			// outlasts any); the others get one no healthy page can reach,
			// so every retry they count is one of the two faults.
			timeout := 30 * time.Second
			if f.Kind == cvmsim.FaultTimeout {
				timeout = time.Second
			}
			s, lim := mustNewScanner(t, srv, scannerOptions{timeout: timeout, rate: 1000})
			f.Offset, f.Count = intp(100), 2
			srv.AddFault(f)
			scan, err := s.Scan(t.Context())
			if err != nil {
				t.Fatalf("Scan after %d transient faults: %v", f.Count, err)
			}
			if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
				t.Fatalf("scan saw %d instances, want %d", len(got), len(want))
			}
			switch got, want := scan.Stats.Retries, 2; {
			case f.Kind == cvmsim.FaultTimeout && got < want:
				// A healthy page slower than the 1s timeout on a loaded
				// machine adds a retry; fewer than 2 means a hang was not retried.
				t.Errorf("retries = %d, want at least %d", got, want)
			case f.Kind != cvmsim.FaultTimeout && got != want:
				t.Errorf("retries = %d, want %d", got, want)
			}
			if strings.HasPrefix(f.Code, "RequestLimitExceeded") {
				if got, want := scan.Stats.Throttles, 2; got != want {
					t.Errorf("throttles = %d, want %d", got, want)
				}
				if lim.Rate() >= 1000 {
					t.Errorf("limiter rate %v, want it slowed below 1000 after throttling", lim.Rate())
				}
			}
		})
	}
}

func TestScanPageFailingEveryRetryIsIncomplete(t *testing.T) {
	for _, kind := range []cvmsim.FaultKind{cvmsim.FaultError, cvmsim.FaultNonJSON, cvmsim.FaultEmptyObject, cvmsim.FaultHTML502} {
		t.Run(string(kind), func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 300})
			s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 3})
			srv.AddFault(cvmsim.Fault{Kind: kind, Code: "InternalError", Offset: intp(100)})
			scan, err := s.Scan(t.Context())
			if !errors.Is(err, watcher.ErrIncomplete) {
				t.Fatalf("Scan error = %v, want ErrIncomplete", err)
			}
			if scan.Complete {
				t.Fatal("scan with a failed page is complete")
			}
			if got, want := scan.Stats.PagesFailed, 1; got != want {
				t.Errorf("failed pages = %d, want %d", got, want)
			}
			// The pages that succeeded still report true states.
			tr := truth(srv)
			if got, want := len(scan.Observations), 200; got != want {
				t.Errorf("observations = %d, want %d from the two good pages", got, want)
			}
			for _, o := range scan.Observations {
				if tr[o.InstanceID] != string(o.State) {
					t.Errorf("observation %v differs from truth %q", o, tr[o.InstanceID])
				}
			}
		})
	}
}

func TestScanAuthFailureIsNotRetried(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 300})
	for name, o := range map[string]scannerOptions{
		"unknown secret id": {secretID: "AKIDnobody", secretKey: "whatever"},
		"wrong secret key":  {secretID: cvmsim.DefaultSecretID, secretKey: "wrong-key"},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := mustNewScanner(t, srv, o)
			scan, err := s.Scan(t.Context())
			if !errors.Is(err, watcher.ErrAuth) {
				t.Fatalf("Scan error = %v, want ErrAuth", err)
			}
			if scan.Complete || len(scan.Observations) != 0 {
				t.Fatalf("failed scan reports complete=%v with %d observations", scan.Complete, len(scan.Observations))
			}
			if got, want := scan.Stats.Requests, 1; got != want {
				t.Errorf("requests = %d, want %d (no retry loop on auth errors)", got, want)
			}
			if strings.Contains(err.Error(), o.secretKey) {
				t.Errorf("error text contains the secret key: %v", err)
			}
		})
	}
}

func TestScanAuthFailureMidScanStopsTheOtherPages(t *testing.T) {
	const instances = 2000 // 20 pages: far more than one round of workers
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: instances})
	// The page at offset 100 fails auth at once; every later page hangs in
	// the simulator, so only the scan giving up can end it before the
	// request timeout. Had the other pages gone on, each hung one would
	// time out (one attempt) and free its worker for the next offset, until
	// all 20 pages had been sent.
	s, _ := mustNewScanner(t, srv, scannerOptions{timeout: 10 * time.Second, attempts: 1})
	authFault := srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "AuthFailure.UnauthorizedOperation", Offset: intp(100)})
	for off := 2 * cvm.PageSize; off < instances; off += cvm.PageSize {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout, Offset: intp(off)})
	}
	scan, err := s.Scan(t.Context())
	if !errors.Is(err, watcher.ErrAuth) || scan.Complete {
		t.Fatalf("Scan = complete %v, %v; want incomplete with ErrAuth", scan.Complete, err)
	}
	fired := -1
	for _, f := range srv.Faults() {
		if f.ID == authFault {
			fired = f.Fired
		}
	}
	if got, want := fired, 1; got != want {
		t.Fatalf("auth fault fired %d times, want %d (once, not retried)", got, want)
	}
	// The first page, then at most one round of the page workers: the
	// offset-100 page and the ones already in flight beside it.
	maxRequests := 1 + cvm.DefaultPageConcurrency
	if got := srv.Stats().Requests[cvm.ActionDescribeInstancesStatus]; got > int64(maxRequests) {
		t.Errorf("simulator got %d requests of a %d-page scan after an auth failure, want at most %d", got, instances/cvm.PageSize, maxRequests)
	}
	if got := scan.Stats.Requests; got > maxRequests {
		t.Errorf("scan counted %d requests after an auth failure, want at most %d", got, maxRequests)
	}
	if got, want := len(scan.Observations), cvm.PageSize; got != want {
		t.Errorf("observations = %d, want %d (the first page only)", got, want)
	}
}

func TestScanClockSkewIsAnAuthError(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 10})
	srv.SetClockOffset(10 * time.Minute)
	s, _ := mustNewScanner(t, srv, scannerOptions{})
	_, err := s.Scan(t.Context())
	if !errors.Is(err, watcher.ErrAuth) || !strings.Contains(err.Error(), "AuthFailure.SignatureExpire") {
		t.Fatalf("Scan error = %v, want AuthFailure.SignatureExpire as ErrAuth", err)
	}
}

func TestScanRejectsHostileItems(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 150})
	hostile := []string{"ins-a.b>*", "ins-with space", strings.Repeat("ins-long", 40), "ins-new\nline"}
	for _, id := range hostile {
		if err := srv.Create(testRegion, id, "RUNNING"); err != nil {
			t.Fatalf("Create(%q): %v", id, err)
		}
	}
	s, _ := mustNewScanner(t, srv, scannerOptions{})
	scan, err := s.Scan(t.Context())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if got, want := scan.Stats.Rejected, len(hostile); got != want {
		t.Errorf("rejected = %d, want %d", got, want)
	}
	if got, want := len(scan.Observations), 150; got != want {
		t.Errorf("observations = %d, want %d", got, want)
	}
	for _, o := range scan.Observations {
		if err := watcher.ValidateObservation(o); err != nil {
			t.Errorf("invalid observation passed through: %v", err)
		}
	}
}

func TestScanHostileAndNullItemsFromFaults(t *testing.T) {
	for _, kind := range []cvmsim.FaultKind{cvmsim.FaultHostileIDs, cvmsim.FaultNullFields} {
		t.Run(string(kind), func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 250})
			s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 2})
			srv.AddFault(cvmsim.Fault{Kind: kind})
			scan, err := s.Scan(t.Context())
			if (err == nil) != scan.Complete {
				t.Fatalf("Scan = complete %v with error %v; err must be nil exactly when complete", scan.Complete, err)
			}
			if len(scan.Observations) == 0 {
				t.Fatalf("no observation under %s (err %v); the test proves nothing", kind, err)
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
			if scan.Stats.Rejected == 0 {
				t.Errorf("no item rejected under %s", kind)
			}
		})
	}
}

func TestScanPassesUnknownStatesThrough(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 20})
	id := srv.Instances(testRegion)[3].InstanceId
	if err := srv.SetState(id, "HIBERNATING"); err != nil {
		t.Fatal(err)
	}
	s, _ := mustNewScanner(t, srv, scannerOptions{})
	scan, err := s.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := observed(scan)[id], "HIBERNATING"; got != want {
		t.Fatalf("state of %s = %q, want %q", id, got, want)
	}
}

func TestScanConflictingDuplicateIsLeftOut(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 250})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultDuplicate, State: "TERMINATING", Offset: intp(100), Count: 1})
	s, _ := mustNewScanner(t, srv, scannerOptions{})
	scan, err := s.Scan(t.Context())
	if err == nil || scan.Complete {
		t.Fatal("scan with a conflicting duplicate is complete; it must not prove any absence")
	}
	if got, want := len(scan.Unreadable), 1; got != want {
		t.Fatalf("unreadable = %v, want 1 ID", scan.Unreadable)
	}
	if _, ok := observed(scan)[scan.Unreadable[0]]; ok {
		t.Errorf("conflicting instance %s still observed", scan.Unreadable[0])
	}
	if got, want := len(scan.Observations), 249; got != want {
		t.Errorf("observations = %d, want %d", got, want)
	}
}

func TestScanSameStateDuplicateIsMerged(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 250})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultDuplicate, Offset: intp(100), Count: 1})
	s, _ := mustNewScanner(t, srv, scannerOptions{})
	scan, err := s.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := scan.Stats.Duplicates, 1; got != want {
		t.Errorf("duplicates = %d, want %d", got, want)
	}
	if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
		t.Errorf("scan saw %d instances, want %d", len(got), len(want))
	}
}

func TestScanOffsetShiftNeverLosesAnInstanceForGood(t *testing.T) {
	for _, kind := range []cvmsim.FaultKind{cvmsim.FaultShiftInsert, cvmsim.FaultShiftRelease} {
		t.Run(string(kind), func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 300})
			srv.AddFault(cvmsim.Fault{Kind: kind, Offset: intp(200), Count: 1})
			s, _ := mustNewScanner(t, srv, scannerOptions{})
			scan, err := s.Scan(t.Context())
			if (err == nil) != scan.Complete {
				t.Fatalf("Scan = complete %v with error %v; err must be nil exactly when complete", scan.Complete, err)
			}
			if !scan.Stats.CountDrift {
				t.Errorf("offset shift not detected: %+v", scan.Stats)
			}
			// Whatever paging missed still exists, and a lookup by ID says so:
			// this is why a disappearance is always confirmed by ID.
			tr := truth(srv)
			missed := missedBy(tr, observed(scan))
			if len(missed) == 0 {
				t.Fatalf("the %s fault made paging miss no instance; the test proves nothing", kind)
			}
			res, err := s.Lookup(t.Context(), missed)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if len(res.Absent) != 0 {
				t.Errorf("lookup calls existing instances absent: %v", res.Absent)
			}
			found := map[string]string{}
			for _, o := range res.Found {
				found[o.InstanceID] = string(o.State)
			}
			for _, id := range missed {
				if got, want := found[id], tr[id]; got != want {
					t.Errorf("lookup of %s missed by paging = %q, want %q", id, got, want)
				}
			}
			for _, o := range scan.Observations {
				if _, ok := tr[o.InstanceID]; !ok && kind == cvmsim.FaultShiftInsert {
					t.Errorf("observed %s that does not exist", o.InstanceID)
				}
			}
		})
	}
}

func TestScanLyingTotalCount(t *testing.T) {
	for _, total := range []int{0, 50, 150, 1000} {
		srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 300})
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLyingTotal, TotalCount: total})
		s, _ := mustNewScanner(t, srv, scannerOptions{})
		scan, err := s.Scan(t.Context())
		if err != nil {
			t.Fatalf("TotalCount %d: Scan: %v", total, err)
		}
		if !scan.Stats.CountDrift {
			t.Errorf("TotalCount %d for 300 instances: no drift reported", total)
		}
		if got, want := observed(scan), truth(srv); !maps.Equal(got, want) {
			t.Errorf("TotalCount %d: scan saw %d instances, want %d", total, len(got), len(want))
		}
	}
}

func TestScanAbsurdTotalCountIsIncomplete(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 300})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLyingTotal, TotalCount: 50_000_000})
	s, _ := mustNewScanner(t, srv, scannerOptions{maxInstances: 1000})
	scan, err := s.Scan(t.Context())
	if err == nil || scan.Complete {
		t.Fatal("scan believed an absurd TotalCount")
	}
	if scan.Stats.Requests > 1 {
		t.Errorf("scan sent %d requests after an absurd TotalCount, want 1", scan.Stats.Requests)
	}
}

func TestScanStaysUnderTheQuota(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 1500, RateLimit: 40})
	s, _ := mustNewScanner(t, srv, scannerOptions{rate: 40})
	scan, err := s.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Stats().Throttled; got != 0 {
		t.Errorf("simulator throttled %d requests of a scan paced at its quota", got)
	}
	if scan.Stats.Throttles != 0 {
		t.Errorf("scanner saw %d throttles", scan.Stats.Throttles)
	}
}

func TestScanAboveTheQuotaSlowsDownAndCompletes(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 3000, RateLimit: 20, Burst: 5})
	s, lim := mustNewScanner(t, srv, scannerOptions{rate: 200, attempts: 10})
	scan, err := s.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if scan.Stats.Throttles == 0 {
		t.Fatal("a scan at 10x the quota was never throttled; the test proves nothing")
	}
	if lim.Rate() >= 200 {
		t.Errorf("limiter still at %v req/s after %d throttles", lim.Rate(), scan.Stats.Throttles)
	}
	if got, want := len(scan.Observations), 3000; got != want {
		t.Errorf("observations = %d, want %d", got, want)
	}
}

func TestScanHonoursCancellation(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 1000})
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout})
	s, _ := mustNewScanner(t, srv, scannerOptions{timeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Scan(ctx)
		done <- err
	}()
	// Cancel only once the first request is inside the simulator, held by
	// the timeout fault: the scan must give up the hung request, not merely
	// notice a cancel before it sends anything.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st := srv.Stats()
		fired := 0
		for _, f := range srv.Faults() {
			fired += f.Fired
		}
		if st.Requests[cvmsim.ActionDescribeInstancesStatus] >= 1 && fired >= 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Scan returned before its request hung in the simulator: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request hung in the simulator within 30s: requests %v, faults %+v", st.Requests, srv.Faults())
		}
	}
	cancel()
	// The request timeout is a minute: only the cancel can end the scan soon.
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Scan after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Scan still running 10s after its context was cancelled during a hung request")
	}
}

func TestLookup(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 260})
	all := srv.Instances(testRegion)
	var ids []string
	for _, in := range all {
		ids = append(ids, in.InstanceId)
	}
	released := ids[:10]
	for _, id := range released {
		if err := srv.Release(id); err != nil {
			t.Fatal(err)
		}
	}
	neverExisted := srv.NewInstanceID()
	s, _ := mustNewScanner(t, srv, scannerOptions{})
	res, err := s.Lookup(t.Context(), append(slices.Clone(ids), neverExisted))
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if got, want := len(res.Found), 250; got != want {
		t.Errorf("found = %d, want %d", got, want)
	}
	wantAbsent := append(slices.Clone(released), neverExisted)
	slices.Sort(wantAbsent)
	gotAbsent := slices.Sorted(slices.Values(res.Absent))
	if !slices.Equal(gotAbsent, wantAbsent) {
		t.Errorf("absent = %v, want %v", gotAbsent, wantAbsent)
	}
	if got, want := srv.Stats().Requests[cvm.ActionDescribeInstancesStatus], int64(3); got != want {
		t.Errorf("lookup of 261 IDs used %d requests, want %d", got, want)
	}
}

func TestLookupProvesNothingItCouldNotCheck(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 5})
	s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 2})
	gone := srv.NewInstanceID()

	t.Run("undocumented id form", func(t *testing.T) {
		res, err := s.Lookup(t.Context(), []string{"ins-TOOLONG123", gone})
		if err == nil {
			t.Error("Lookup of an undocumented ID form returned no error")
		}
		if !slices.Equal(res.Absent, []string{gone}) {
			t.Errorf("absent = %v, want only %s", res.Absent, gone)
		}
	})
	for _, kind := range []cvmsim.FaultKind{cvmsim.FaultError, cvmsim.FaultEmptyObject, cvmsim.FaultNullFields, cvmsim.FaultLyingTotal} {
		t.Run(string(kind), func(t *testing.T) {
			id := srv.AddFault(cvmsim.Fault{Kind: kind, Code: "InternalError", TotalCount: 7})
			defer srv.RemoveFault(id)
			res, err := s.Lookup(t.Context(), []string{srv.Instances(testRegion)[0].InstanceId, gone})
			if err == nil {
				t.Errorf("Lookup under %s returned no error: %+v", kind, res)
			}
			if slices.Contains(res.Absent, srv.Instances(testRegion)[0].InstanceId) {
				t.Errorf("existing instance called absent under %s: %+v", kind, res)
			}
		})
	}
}
