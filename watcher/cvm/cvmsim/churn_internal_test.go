package cvmsim

import (
	"testing"
	"time"
)

// allowed are the transitions the churn engine may make.
func allowed() map[[2]string]bool {
	m := map[[2]string]bool{}
	for _, e := range [][2]string{
		{Absent, StatePending}, {StatePending, StateRunning}, {StatePending, StateLaunchFailed},
		{StateRunning, StateStopping}, {StateStopping, StateStopped},
		{StateStopped, StateStarting}, {StateStarting, StateRunning},
		{StateRunning, StateRebooting}, {StateRebooting, StateRunning},
		{StateRunning, StateShutdown}, {StateStopped, StateShutdown}, {StateLaunchFailed, StateShutdown},
		{StateShutdown, StateTerminating}, {StateTerminating, Absent},
	} {
		m[e] = true
	}
	return m
}

// simulate runs the churn engine of a fresh server for d in steps of dt of
// synthetic time, without sleeping.
func simulate(t *testing.T, opts Options, d, dt time.Duration) (*Server, time.Time) {
	t.Helper()
	s, err := newServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	start := s.churn.last // the server's t0: History's initial changes are at it
	now := start
	for now.Sub(start) < d {
		now = now.Add(dt)
		s.advance(now)
	}
	return s, start
}

func TestChurnGoesThroughRealStates(t *testing.T) {
	opts := Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}, InstancesPerRegion: 40, Seed: 5, Churn: 2}
	s, _ := simulate(t, opts, 20*time.Minute, 250*time.Millisecond)
	h := s.History()
	initial := 80
	ok := allowed()
	seen := map[string]int{}
	enteredAt := map[string]time.Time{}
	for i, c := range h[initial:] {
		if !ok[[2]string{c.From, c.To}] {
			t.Fatalf("change %d: %s -> %s is not a real lifecycle step", i, c.From, c.To)
		}
		if i > 0 && c.Time.Before(h[initial+i-1].Time) {
			t.Fatalf("change %d goes back in time", i)
		}
		seen[c.To]++
		key := c.InstanceID + "/" + c.From
		if c.From == StateStopping {
			d := c.Time.Sub(enteredAt[key])
			if d < 5*time.Second || d > 20*time.Second {
				t.Fatalf("%s stayed STOPPING %v, want 5s..20s", c.InstanceID, d)
			}
		}
		enteredAt[c.InstanceID+"/"+c.To] = c.Time
	}
	for _, st := range []string{StatePending, StateRunning, StateStopping, StateStopped, StateStarting,
		StateRebooting, StateShutdown, StateTerminating, Absent} {
		if seen[st] == 0 {
			t.Errorf("churn never reached %s (saw %v)", st, seen)
		}
	}
	for _, r := range opts.Regions {
		if n := len(s.Instances(r)); n < 20 || n > 60 {
			t.Errorf("region %s drifted to %d instances from 40", r, n)
		}
	}
	// History replays to the fleet.
	live := map[string]string{}
	for _, c := range h {
		if c.To == Absent {
			delete(live, c.InstanceID)
		} else {
			live[c.InstanceID] = c.To
		}
	}
	all := s.Instances("")
	if len(live) != len(all) {
		t.Fatalf("replay %d instances, fleet %d", len(live), len(all))
	}
	for _, in := range all {
		if live[in.InstanceId] != in.InstanceState {
			t.Fatalf("%s: replay %q, fleet %q", in.InstanceId, live[in.InstanceId], in.InstanceState)
		}
		isolated := in.IsolatedSource == "ARREAR" || in.IsolatedSource == "EXPIRE"
		switch in.InstanceState {
		case StateShutdown, StateTerminating:
			if isolated {
				// an isolation for arrears or expiry: no operation
				if in.RestrictState != "EXPIRED" {
					t.Fatalf("%s isolated for %s with restrict state %s", in.InstanceId, in.IsolatedSource, in.RestrictState)
				}
				continue
			}
			if in.IsolatedSource != "MANMADE" {
				t.Fatalf("%s in %s by TerminateInstances with isolated source %s", in.InstanceId, in.InstanceState, in.IsolatedSource)
			}
			fallthrough
		case StateStopping, StateStarting, StateRebooting, StatePending:
			if in.LatestOperationState != "OPERATING" {
				t.Fatalf("%s in %s with operation %s %s", in.InstanceId, in.InstanceState, in.LatestOperation, in.LatestOperationState)
			}
		}
	}
}

func TestChurnIsDeterministic(t *testing.T) {
	opts := Options{InstancesPerRegion: 20, Seed: 77, Churn: 3, DwellScale: 0.1}
	a, startA := simulate(t, opts, 2*time.Minute, 100*time.Millisecond)
	b, startB := simulate(t, opts, 2*time.Minute, 100*time.Millisecond)
	ha, hb := a.History(), b.History()
	if len(ha) != len(hb) || len(ha) <= 20 {
		t.Fatalf("histories of %d and %d changes", len(ha), len(hb))
	}
	for i := range ha {
		x, y := ha[i], hb[i]
		if x.InstanceID != y.InstanceID || x.From != y.From || x.To != y.To || x.Time.Sub(startA) != y.Time.Sub(startB) {
			t.Fatalf("change %d: %+v vs %+v", i, x, y)
		}
	}
}

func TestChurnDwellScale(t *testing.T) {
	s, _ := simulate(t, Options{InstancesPerRegion: 20, Seed: 3, Churn: 5, DwellScale: 0.01}, 30*time.Second, 10*time.Millisecond)
	entered := map[string]time.Time{}
	for _, c := range s.History() {
		if c.From == StateShutdown {
			if d := c.Time.Sub(entered[c.InstanceID]); d > 6*time.Second {
				t.Fatalf("SHUTDOWN lasted %v at scale 0.01", d)
			}
		}
		entered[c.InstanceID] = c.Time
	}
}

func TestSetStateCancelsChurnPlan(t *testing.T) {
	s, err := newServer(Options{InstancesPerRegion: 1, Seed: 1, Churn: 0})
	if err != nil {
		t.Fatal(err)
	}
	in := s.Instances("")[0]
	now := s.now()
	s.mu.Lock()
	s.startOpLocked(s.fleet.byID[in.InstanceId], now, ActionStopInstances, "", false)
	s.mu.Unlock()
	if err := s.SetState(in.InstanceId, "HIBERNATING"); err != nil {
		t.Fatal(err)
	}
	s.advance(now.Add(time.Hour))
	if got := s.Instances("")[0].InstanceState; got != "HIBERNATING" {
		t.Fatalf("state %s after the cancelled plan's due time, want HIBERNATING", got)
	}
}
