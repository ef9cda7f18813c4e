package main

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// churner drives the simulated fleet through real lifecycles, one step per
// operation, through the simulator's recorded API (so History is the truth).
// It is used instead of the simulator's own churn because it can be stopped
// for the quiet period the oracle's loss check needs.
type churner struct {
	sim     *cvmsim.Server
	regions []string
	target  int
	rng     *rand.Rand
	ops     int
}

// run applies about rate operations per second until ctx is done.
func (c *churner) run(ctx context.Context, rate float64) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	credit := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		credit += rate * 0.02
		for ; credit >= 1; credit-- {
			c.step()
		}
	}
}

// step moves one random instance one step along a typical CVM path, or
// creates one when the region is below its target size.
func (c *churner) step() {
	c.ops++
	region := c.regions[c.rng.IntN(len(c.regions))]
	ins := c.sim.Instances(region)
	if len(ins) < c.target && c.rng.IntN(4) == 0 || len(ins) == 0 {
		c.sim.Create(region, c.sim.NewInstanceID(), cvmsim.StatePending)
		return
	}
	in := ins[c.rng.IntN(len(ins))]
	p := c.rng.IntN(100)
	next := ""
	switch in.InstanceState {
	case cvmsim.StatePending:
		next = pick(p < 5, cvmsim.StateLaunchFailed, cvmsim.StateRunning)
	case cvmsim.StateRunning:
		switch {
		case p < 50:
			next = cvmsim.StateStopping
		case p < 80:
			next = cvmsim.StateRebooting
		case p < 97:
			next = cvmsim.StateShutdown
		default:
			next = "HIBERNATING" // a state the watcher does not know: passed through
		}
	case cvmsim.StateStopping:
		next = cvmsim.StateStopped
	case cvmsim.StateStopped:
		next = pick(p < 20, cvmsim.StateShutdown, cvmsim.StateStarting)
	case cvmsim.StateStarting, cvmsim.StateRebooting, "HIBERNATING":
		next = cvmsim.StateRunning
	case cvmsim.StateShutdown:
		next = cvmsim.StateTerminating
	case cvmsim.StateTerminating, cvmsim.StateLaunchFailed:
		c.sim.Release(in.InstanceId)
		return
	default:
		next = cvmsim.StateRunning
	}
	c.sim.SetState(in.InstanceId, next)
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}
