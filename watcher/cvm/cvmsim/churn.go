package cvmsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// step is one pending churn transition: at time at, the instance goes to to
// (Absent: it is released), or with keep stays in its state. The last step
// of a plan ends the instance's operation, if it has one: FAILED with fail
// as the message if set (or when the instance ends LAUNCH_FAILED), SUCCESS
// otherwise.
type step struct {
	to   string
	at   time.Time
	keep bool
	fail string
}

// dwell is the range of time an instance stays in an intermediate state, at
// DwellScale 1. SHUTDOWN is much shorter than the real "up to 2 hours" so a
// demo shows whole lifecycles.
type dwell struct{ min, max time.Duration }

func dwellOf(state string) dwell {
	switch state {
	case StatePending:
		return dwell{10 * time.Second, 40 * time.Second}
	case StateStopping, StateStarting:
		return dwell{5 * time.Second, 20 * time.Second}
	case StateRebooting:
		return dwell{10 * time.Second, 40 * time.Second}
	case StateShutdown:
		return dwell{30 * time.Second, 300 * time.Second}
	case StateTerminating:
		return dwell{5 * time.Second, 20 * time.Second}
	}
	return dwell{time.Second, 2 * time.Second}
}

// churn is the state of the churn engine. Guarded by Server.mu.
type churn struct {
	rate   float64 // operations started per second, across the fleet
	scale  float64 // DwellScale
	target int     // desired listed instances per region
	credit float64 // operations owed
	last   time.Time
}

// churnTick is how often the churn goroutine advances the simulation.
const churnTick = 100 * time.Millisecond

// runChurn advances the churn engine on a ticker until the server closes.
func (s *Server) runChurn() {
	defer close(s.churnDone)
	t := time.NewTicker(churnTick)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.advance(s.now())
		}
	}
}

// advance moves the simulation to now: it applies every churn transition due
// by now (earliest first, each recorded at its due time), then starts the
// operations owed since the last call at Options.Churn per second. Tests call
// it directly with synthetic times; it never sleeps.
func (s *Server) advance(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
}

// advanceLocked is advance with s.mu held.
func (s *Server) advanceLocked(now time.Time) {
	s.applyDueLocked(now)
	c := &s.churn
	if c.last.IsZero() || now.Before(c.last) {
		c.last = now
	}
	if c.rate <= 0 {
		c.last = now
		return
	}
	c.credit += c.rate * now.Sub(c.last).Seconds()
	c.last = now
	if limit := math.Max(1, c.rate*5); c.credit > limit {
		c.credit = limit // after a long pause, do not start a storm
	}
	for c.credit >= 1 {
		c.credit--
		s.churnOpLocked(now)
	}
}

// applyDueLocked applies the pending transitions due by now, earliest first.
func (s *Server) applyDueLocked(now time.Time) {
	for {
		var next *instance
		for _, in := range s.fleet.pending {
			if len(in.plan) == 0 || in.plan[0].at.After(now) {
				continue
			}
			if next == nil || in.plan[0].at.Before(next.plan[0].at) ||
				in.plan[0].at.Equal(next.plan[0].at) && in.seq < next.seq {
				next = in
			}
		}
		if next == nil {
			return
		}
		st := next.plan[0]
		next.plan = next.plan[1:]
		op := next.op
		switch {
		case st.to == Absent:
			s.fleet.remove(next, st.at)
		case !st.keep:
			s.fleet.setState(next, st.to, st.at)
		}
		if len(next.plan) > 0 {
			continue
		}
		delete(s.fleet.pending, next.id)
		switch {
		case st.fail != "":
			finishOpLocked(next, op, OperationFailed, st.fail)
		case st.to == StateLaunchFailed:
			finishOpLocked(next, op, OperationFailed, failureMessage(ActionRunInstances))
		default:
			finishOpLocked(next, op, OperationSuccess, "")
		}
	}
}

// dwellLocked draws how long an instance stays in state, scaled.
func (s *Server) dwellLocked(state string) time.Duration {
	d := dwellOf(state)
	span := d.max - d.min
	v := d.min + time.Duration(s.rngChurn.Int64N(int64(span)+1))
	return time.Duration(float64(v) * s.churn.scale)
}

// isolationShare is the share of the churn engine's terminations that are
// isolations for arrears (postpaid) or expiry (prepaid) instead: SHUTDOWN
// with no operation, RestrictState EXPIRED and IsolatedSource ARREAR or
// EXPIRE, then TERMINATING and released like a termination.
const isolationShare = 0.1

// pickStable returns a uniformly random stable instance of list (RUNNING,
// STOPPED or LAUNCH_FAILED with nothing planned), or nil if it has none. It
// samples (rejection sampling is uniform over the stable ones) and lists
// them all only when sampling finds none: at a million instances a full
// walk per operation held the server's lock for most of every second.
func pickStable(r *rand.Rand, list []*instance) *instance {
	stable := func(in *instance) bool {
		if len(in.plan) > 0 {
			return false
		}
		switch in.state {
		case StateRunning, StateStopped, StateLaunchFailed:
			return true
		}
		return false
	}
	if len(list) == 0 {
		return nil
	}
	for range 64 {
		if in := list[r.IntN(len(list))]; stable(in) {
			return in
		}
	}
	var all []*instance
	for _, in := range list {
		if stable(in) {
			all = append(all, in)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all[r.IntN(len(all))]
}

// churnOpLocked starts one seeded-random lifecycle operation in a random
// region. Creations and terminations are balanced to steer each region's
// listed size (SHUTDOWN and TERMINATING included) towards the initial size;
// the other operations stop, start and reboot stable instances. An
// operation fails (its state unchanged, FAILED with a message) with
// probability Options.OperationFailureRate.
func (s *Server) churnOpLocked(now time.Time) {
	r := s.rngChurn
	region := s.fleet.order[r.IntN(len(s.fleet.order))]
	list := s.fleet.regions[region]
	size := len(list)
	in := pickStable(r, list)
	pCreate, pTerminate := 0.15, 0.15
	switch {
	case size < s.churn.target:
		pCreate, pTerminate = 0.3, 0.05
	case size > s.churn.target:
		pCreate, pTerminate = 0.05, 0.3
	}
	x := r.Float64()
	if x < pCreate || in == nil {
		if size <= s.churn.target {
			s.opCreateLocked(region, now)
		}
		return
	}
	var action string
	switch {
	case x < pCreate+pTerminate || in.state == StateLaunchFailed:
		if in.state != StateLaunchFailed && s.rngOps.Float64() < isolationShare {
			s.isolateLocked(in, now)
			return
		}
		action = ActionTerminateInstances
	case in.state == StateStopped:
		action = ActionStartInstances
	case r.Float64() < 0.3:
		action = ActionStopInstances
	default:
		action = ActionRebootInstances
	}
	actor := churnActors[s.rngOps.IntN(len(churnActors))]
	fail := s.opts.OperationFailureRate > 0 && s.rngOps.Float64() < s.opts.OperationFailureRate
	s.startOpLocked(in, now, action, actor, fail)
}

// isolateLocked shuts in down for arrears (postpaid) or expiry (prepaid):
// no operation, LatestOperation* untouched.
func (s *Server) isolateLocked(in *instance, now time.Time) {
	s.fleet.cancel(in)
	in.restrict, in.isolated = "EXPIRED", "ARREAR"
	if in.chargeType == "PREPAID" {
		in.isolated = "EXPIRE"
	}
	s.fleet.setState(in, StateShutdown, now)
	s.planLocked(in, now, []string{StateShutdown, StateTerminating, Absent})
}

func (s *Server) planLocked(in *instance, now time.Time, path []string) {
	at := now
	in.plan = in.plan[:0]
	for i := 1; i < len(path); i++ {
		at = at.Add(s.dwellLocked(path[i-1]))
		in.plan = append(in.plan, step{to: path[i], at: at})
	}
	s.fleet.pending[in.id] = in
}

// opCreateLocked launches a new instance: PENDING, then RUNNING, or
// LAUNCH_FAILED about 5% of the time (the RunInstances operation FAILED).
func (s *Server) opCreateLocked(region string, now time.Time) {
	in := s.genInstanceLocked(region, s.newIDLocked(), StatePending, now)
	s.newOpLocked(in, ActionRunInstances, churnActors[s.rngOps.IntN(len(churnActors))], "", true, now)
	s.fleet.add(in, now)
	final := StateRunning
	if s.rngChurn.IntN(100) < 5 {
		final = StateLaunchFailed
	}
	s.planLocked(in, now, []string{StatePending, final})
}

// SetChurn sets the churn engine's rate (Options.Churn: lifecycle operations
// started per second across the fleet) from now on; 0 pauses it. Operations
// already started run to their end either way. It starts the engine if the
// server was created with no churn.
func (s *Server) SetChurn(rate float64) error {
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return fmt.Errorf("churn %v: want a finite rate >= 0", rate)
	}
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return errors.New("churn: the simulator is closed")
	}
	s.mu.Lock()
	s.advanceLocked(s.now()) // what was owed at the old rate
	s.churn.rate = rate
	s.mu.Unlock()
	if rate > 0 && !s.churnRunning {
		s.churnRunning = true
		s.churnDone = make(chan struct{})
		go s.runChurn()
	}
	return nil
}

// Churn returns the churn engine's rate.
func (s *Server) Churn() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.churn.rate
}
