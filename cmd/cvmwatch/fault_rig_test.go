package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// rig is the process-level fault harness: the simulator in the test, a
// nats-server process, and `cvmwatch run` processes on one data dir, with
// the oracle as judge.
type rig struct {
	t        *testing.T
	sim      *cvmsim.Server
	nats     *natstest.Server
	cfg      daemonConfig
	cfgPath  string
	log      *lockedFile
	d        *daemonProc
	interval time.Duration
	bs, be   time.Time // baseline window
}

// newRig starts the simulator and NATS (with extra nats-server flags) and
// writes the daemon's config; edit tweaks it first. It does not start the
// daemon.
func newRig(t *testing.T, instances int, edit func(*daemonConfig), natsFlags ...string) *rig {
	t.Helper()
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: instances, Seed: 5, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	r := &rig{t: t, sim: sim, nats: natstest.StartServer(t, natsFlags...), log: newLogFile(t), interval: time.Second}
	r.cfg = daemonConfig{DataDir: filepath.Join(t.TempDir(), "data"), SimURL: sim.URL(), NATSURL: r.nats.URL(), Interval: r.interval}
	if edit != nil {
		edit(&r.cfg)
	}
	r.cfgPath = r.cfg.write(t)
	return r
}

// start runs the daemon; env is added to its environment.
func (r *rig) start(env ...string) {
	r.t.Helper()
	if r.bs.IsZero() {
		r.bs = time.Now()
	}
	r.d = startDaemon(r.t, r.cfgPath, r.log, env...)
}

// waitLog waits until the daemon's log contains s.
func (r *rig) waitLog(s string, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.log.String(), s) {
		if r.d != nil && r.d.exited() {
			r.t.Fatalf("the daemon exited (%v) before logging %q: %s", r.d.err, s, tail(r.log.String(), 20))
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q in the log within %s; log: %s", s, within, keepLog(r.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitBaseline waits for the first complete scan and records the end of
// the baseline window.
func (r *rig) waitBaseline() {
	r.t.Helper()
	r.waitLog("complete=true", 30*time.Second)
	r.be = time.Now()
}

// opts are the oracle options for this rig's silent baseline.
func (r *rig) opts() oracle.Options {
	if r.cfg.Announce {
		return oracle.Options{Announced: true, MustSee: 2 * r.interval}
	}
	return oracle.Options{BaselineStart: r.bs, BaselineEnd: r.be, MustSee: 2 * r.interval}
}

// converge waits until the oracle finds the stream complete (the fleet
// must be quiet), failing at once on a violation waiting cannot cure. It
// returns the final report.
func (r *rig) converge(within time.Duration) oracle.Report {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		now := time.Now()
		msgs, err := readStream(r.t.Context(), r.nats.URL(), r.nats.AuthOption())
		if err == nil {
			opts := r.opts()
			opts.End = now
			rep := oracle.Check(msgs, r.sim.History(), opts)
			for _, v := range rep.Violations {
				if v.Kind != "lost" {
					r.t.Fatalf("oracle:\n%s\nlog: %s", rep, keepLog(r.log))
				}
			}
			if rep.OK() {
				return rep
			}
			if now.After(deadline) {
				r.t.Fatalf("stream incomplete after %s:\n%s\nlog: %s", within, rep, keepLog(r.log))
			}
		} else if now.After(deadline) {
			r.t.Fatalf("read stream: %v", err)
		}
		time.Sleep(r.interval)
	}
}

// change makes n real changes: stops n RUNNING instances (or starts
// STOPPED ones), and returns their IDs.
func (r *rig) change(n int) []string {
	r.t.Helper()
	var ids []string
	for _, in := range r.sim.Instances("") {
		if len(ids) == n {
			break
		}
		switch in.InstanceState {
		case "RUNNING":
			r.sim.SetState(in.InstanceId, "STOPPED")
		case "STOPPED":
			r.sim.SetState(in.InstanceId, "RUNNING")
		default:
			continue
		}
		ids = append(ids, in.InstanceId)
	}
	return ids
}
