package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// The API faults, end to end: the product's wiring (official SDK, bbolt,
// JetStream) against the simulator misbehaving, judged by the oracle. Each
// case takes a silent baseline, turns its fault on, makes real changes
// (a stop, a creation, a release), scans under the fault, and checks that
// nothing false was published; then it turns the fault off, scans until the
// changes are confirmed, and checks that nothing was lost.

// apiFault is one case: on turns the fault on, off turns it off again.
type apiFault struct {
	name string
	on   func(t *testing.T, h *harness)
	off  func(t *testing.T, h *harness)
	// wantErr, if set, must be what a scan under the fault returns.
	wantErr error
	// scans under the fault; default 3.
	scans int
}

func simFault(f cvmsim.Fault) func(*testing.T, *harness) {
	return func(_ *testing.T, h *harness) { h.sim.AddFault(f) }
}

func clearFaults(_ *testing.T, h *harness) { h.sim.ClearFaults() }

func TestFaultAPI(t *testing.T) {
	t.Parallel()
	status := cvmsim.ActionDescribeInstancesStatus
	cases := []apiFault{
		{name: "throttling storm", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded", Rate: 0.8, Count: 8})},
		{name: "uin throttling storm", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "RequestLimitExceeded.UinLimitExceeded", Rate: 0.8, Count: 8})},
		{name: "5xx burst", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Count: 8})},
		{name: "service unavailable", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "ServiceUnavailable", Rate: 0.5})},
		{name: "html 502", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultHTML502, Rate: 0.5})},
		{name: "slow bodies", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultLatency, Delay: cvmsim.Duration(300 * time.Millisecond)})},
		{name: "timeout", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout, Action: status, Offset: intp(100), Count: 1}), scans: 1},
		{name: "page failing permanently", scans: 2, on: simFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: "InternalError", Action: status, Offset: intp(100)})},
		{name: "offset shift insert", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultShiftInsert, Action: status, Offset: intp(100), Count: 2})},
		{name: "offset shift release", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultShiftRelease, Action: status, Offset: intp(200), Count: 2})},
		{name: "conflicting duplicates", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultDuplicate, State: "STOPPED", Rate: 0.5})},
		{name: "lying total count", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultLyingTotal, TotalCount: 90, Action: status, Offset: intp(0)})},
		{name: "absurd total count", scans: 2, on: simFault(cvmsim.Fault{Kind: cvmsim.FaultLyingTotal, TotalCount: 1 << 30, Action: status})},
		{name: "truncated body", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultTruncated, Rate: 0.5})},
		{name: "non-json body", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultNonJSON, Rate: 0.5})},
		{name: "empty object", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultEmptyObject, Rate: 0.5})},
		{name: "empty response", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultEmptyResponse, Rate: 0.5})},
		{name: "null fields", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultNullFields})},
		{name: "hostile ids", on: simFault(cvmsim.Fault{Kind: cvmsim.FaultHostileIDs})},
		{name: "unknown state", on: func(t *testing.T, h *harness) {
			// A state nobody documented yet is real and passed through.
			if err := h.sim.SetState(h.running(1)[0], "HIBERNATING"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "wrong credentials", wantErr: watcher.ErrAuth, on: func(t *testing.T, h *harness) {
			h.close()
			h.cfg.Accounts[0].Credentials.SecretKey = "wrong-key-do-not-echo"
			h.open()
		}, off: func(t *testing.T, h *harness) {
			h.close()
			h.cfg.Accounts[0].Credentials.SecretKey = cvmsim.DefaultSecretKey
			h.open()
		}},
		{name: "clock skew beyond 5 minutes", wantErr: watcher.ErrAuth, on: func(_ *testing.T, h *harness) {
			h.sim.SetClockOffset(7 * time.Minute)
		}, off: func(_ *testing.T, h *harness) { h.sim.SetClockOffset(0) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runAPIFault(t, c)
		})
	}
}

// runAPIFault runs one case; see the top of the file.
func runAPIFault(t *testing.T, c apiFault) {
	h := newHarness(t, 350)
	bs := time.Now()
	h.scanAndRelay()
	be := time.Now()
	if c.off == nil {
		c.off = clearFaults
	}
	// Real changes first (under a clock skew they would be recorded at
	// the skewed time), then the fault.
	ids := h.running(2)
	h.sim.SetState(ids[0], "STOPPED")
	h.sim.Release(ids[1])
	h.sim.Create("ap-guangzhou", h.sim.NewInstanceID(), "PENDING")
	c.on(t, h)
	if c.scans == 0 {
		c.scans = 3
	}
	for range c.scans {
		_, err := h.d.watcher.ScanOnce(t.Context(), h.target)
		if c.wantErr != nil && !errors.Is(err, c.wantErr) {
			t.Fatalf("scan under the fault returned %v, want %v", err, c.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-key-do-not-echo") {
			t.Fatalf("scan error echoes the secret: %v", err)
		}
		if err := h.relay(); err != nil {
			t.Fatalf("relay: %v", err)
		}
	}
	opts := oracle.Options{BaselineStart: bs, BaselineEnd: be}
	if r := oracle.Check(h.messages(), h.sim.History(), opts); !r.OK() {
		t.Fatalf("under the fault:\n%s", r)
	}

	c.off(t, h)
	for range h.cfg.Events.ConfirmScans + 2 {
		h.scanAndRelay()
	}
	opts.End = time.Now()
	r := oracle.Check(h.messages(), h.sim.History(), opts)
	if !r.OK() {
		t.Fatalf("after the fault:\n%s", r)
	}
	if r.Events < 3 {
		t.Fatalf("the three real changes gave %d events:\n%s", r.Events, r)
	}
}

// messages reads the harness's stream for the oracle.
func (h *harness) messages() []oracle.Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	msgs, err := readStream(ctx, fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort))
	if err != nil {
		h.t.Fatal(err)
	}
	return msgs
}

// TestFaultAPIEmptyListingIsHeld: an API (or permission) glitch that lists
// no instance at all for a whole target for a few scans is held as a mass
// disappearance: no instance is declared gone, and when the listing comes
// back nothing was published.
func TestFaultAPIEmptyListingIsHeld(t *testing.T) {
	t.Parallel()
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 120, Seed: 11, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var empty atomic.Bool
	// A gateway in front of the simulator answers every listing (and
	// every lookup by ID) with a well-formed empty result while empty is set.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if empty.Load() && r.Header.Get("X-TC-Action") == cvmsim.ActionDescribeInstancesStatus {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"Response":{"TotalCount":0,"InstanceStatusSet":[],"RequestId":"0f0e0d0c-0000-4000-8000-000000000000"}}`)
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	defer front.Close()
	h := newHarnessFor(t, sim, front.URL)
	bs := time.Now()
	h.scanAndRelay()
	be := time.Now()

	empty.Store(true)
	held := h.cfg.Events.MassConfirmScans - 1
	for i := range held {
		if c := h.scan(); len(c.Events) != 0 {
			t.Fatalf("empty scan %d committed %d events", i+1, len(c.Events))
		}
		if err := h.relay(); err != nil {
			t.Fatal(err)
		}
	}
	empty.Store(false)
	for range 3 {
		h.scanAndRelay()
	}
	opts := oracle.Options{BaselineStart: bs, BaselineEnd: be, End: time.Now()}
	r := oracle.Check(h.messages(), sim.History(), opts)
	if !r.OK() {
		t.Fatalf("after %d empty listings:\n%s", held, r)
	}
	if r.Events != 0 {
		t.Fatalf("an empty listing published %d events", r.Events)
	}
}

// TestFaultAPINullBody: a gateway answering the JSON `null` (which makes
// the SDK dereference nil) only fails those requests, which are retried; it
// never crashes the process and never produces a false event.
func TestFaultAPINullBody(t *testing.T) {
	t.Parallel()
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 150, Seed: 12, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var broken atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Add(-1) >= 0 {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "null")
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	defer front.Close()
	h := newHarnessFor(t, sim, front.URL)
	bs := time.Now()
	h.scanAndRelay()
	be := time.Now()
	id := h.running(1)[0]
	sim.SetState(id, "STOPPED")
	broken.Store(3)
	h.scanAndRelay()
	if n := broken.Load(); n >= 0 {
		t.Fatalf("%d null bodies left unsent", n+1)
	}
	for range 2 {
		h.scanAndRelay()
	}
	r := oracle.Check(h.messages(), sim.History(), oracle.Options{BaselineStart: bs, BaselineEnd: be, End: time.Now()})
	if !r.OK() || r.Events != 1 {
		t.Fatalf("want exactly the one stop:\n%s", r)
	}
}
