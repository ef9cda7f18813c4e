package publishertest

import (
	"fmt"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// cycle is the state sequence every generated instance walks through, after
// appearing: RUNNING -> STOPPING -> STOPPED -> STARTING -> RUNNING -> ...
var cycle = []watcher.State{watcher.StateRunning, watcher.StateStopping, watcher.StateStopped, watcher.StateStarting}

// base is the observation time of the first generated event.
var base = time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)

// Events returns n valid events, round robin over `instances` instances per
// target (instance IDs "ins-00000000", ...), in the order a relay would
// publish them: each instance's events have sequences 1, 2, 3, ..., the
// first is an appearance (From = ABSENT), each From is the previous To, and
// IDs are watcher.EventID. It panics if targets is empty or instances < 1.
func Events(targets []watcher.Target, instances, n int) []watcher.Event {
	if len(targets) == 0 || instances < 1 {
		panic("publishertest.Events: no target or instance")
	}
	type inst struct {
		target watcher.Target
		id     string
		seq    uint64
		state  watcher.State
		seen   time.Time
	}
	all := make([]*inst, 0, len(targets)*instances)
	for i := 0; i < instances; i++ {
		for _, t := range targets {
			all = append(all, &inst{target: t, id: fmt.Sprintf("ins-%08d", i), state: watcher.Absent})
		}
	}
	out := make([]watcher.Event, n)
	for k := range out {
		in := all[k%len(all)]
		to := cycle[int(in.seq)%len(cycle)]
		in.seq++
		at := base.Add(time.Duration(k) * time.Millisecond)
		out[k] = Event(in.target, in.id, in.seq, in.state, to, at, in.seen)
		in.state, in.seen = to, at
	}
	return out
}

// Event returns one event with its stable ID (watcher.EventID). Tokens are
// not checked: a test can build a hostile event with it.
func Event(t watcher.Target, instanceID string, seq uint64, from, to watcher.State, observed, previous time.Time) watcher.Event {
	return watcher.Event{
		ID:                 watcher.EventID(t, instanceID, seq, from, to),
		Target:             t,
		InstanceID:         instanceID,
		From:               from,
		To:                 to,
		Sequence:           seq,
		ObservedAt:         observed,
		PreviousObservedAt: previous,
	}
}
