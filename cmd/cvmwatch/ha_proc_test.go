package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// TestHAProcessFaults runs the product as an HA deployment does: three
// `cvmwatch run` processes with ha enabled on a 3-node cluster of
// nats-server processes, sharing six targets of the simulator under
// churn. One after the other it SIGKILLs the owner of a target, SIGSTOPs an
// owner past its lease and then SIGCONTs it (fencing: it must stand down),
// SIGKILLs a NATS node and restarts it, restarts every replica at once, and
// adds a fourth replica and removes one. After each fault the churn stops
// and the oracle judges the whole stream: nothing lost, nothing false, no
// fork, no conflicting id. Each target a fault took from its owner (or
// interrupted) is timed from the fault to its first scan committed after
// it; the table is logged and, with CVMWATCH_HA_REPORT=path, written as
// JSON.
func TestHAProcessFaults(t *testing.T) {
	if testing.Short() {
		skipBecause(t, "a 3-node NATS cluster and 3 replica processes; skipped under -short")
	}
	const ttl, interval = 3 * time.Second, time.Second
	r := newHARig(t, 50, ttl, interval, 12)
	rep := &haReport{LeaseTTL: ttl.String(), Interval: interval.String()}
	t.Cleanup(func() { rep.log(t) })
	started := time.Now()
	for _, id := range []string{"r1", "r2", "r3"} {
		r.start(id)
	}
	o := r.waitSpread(60 * time.Second)
	r.waitScanned(started, r.targets(), 30*time.Second)
	t.Logf("spread: %v", held(o))
	judge := func(fault string) {
		t.Helper()
		rep.gaps(r)
		rep.addOracle(fault, r.converge())
		r.startChurn(10)
	}
	r.startChurn(10)

	// 1. SIGKILL of the owner of a target: nothing released, its leases
	// expire, the others take its targets and continue their chains.
	o = r.mustOwners()
	victim := o[r.targets()[0]].Replica
	lost := targetsOf(o, victim)
	t.Logf("fault 1: SIGKILL %s, owner of %v", victim, lost)
	from := time.Now()
	r.replica(victim).end(syscall.SIGKILL)
	rep.record(r, "SIGKILL owner", from, lost, o)
	r.start(victim)
	r.waitSpread(60 * time.Second)
	judge("SIGKILL owner")

	// 2. SIGSTOP of an owner past its lease, then SIGCONT: its targets are
	// taken over while it sleeps; on waking it must notice and stand down,
	// taking a target again only by a fresh claim, and the stream shows no
	// fork.
	o = r.waitSpread(60 * time.Second)
	victim = o[r.targets()[1]].Replica
	lost = targetsOf(o, victim)
	p := r.replica(victim)
	t.Logf("fault 2: SIGSTOP %s, owner of %v", victim, lost)
	from = time.Now()
	p.pause()
	rep.record(r, "SIGSTOP owner", from, lost, o)
	mark := len(p.log.String())
	p.resume()
	r.waitStandDown(p, mark, lost)
	if p.p.exited() {
		r.fail("%s exited after SIGCONT: %v", victim, p.p.err)
	}
	r.waitSpread(60 * time.Second)
	woke := p.log.String()[mark:]
	t.Logf("%s after SIGCONT: %d journal writes and %d publishes refused (fenced)", victim,
		strings.Count(woke, "fenced"), strings.Count(woke, "wrong last sequence"))
	judge("SIGSTOP owner")

	// 3. The NATS node leading the lease bucket SIGKILLed, restarted once
	// another leads it.
	o = r.waitSpread(60 * time.Second)
	leader := r.streamLeader("KV_CVMWATCH_LEASES", "")
	node := r.node(leader)
	t.Logf("fault 3: SIGKILL nats-server %s (lease bucket leader)", leader)
	from = time.Now()
	node.Kill()
	r.streamLeader("KV_CVMWATCH_LEASES", leader)
	node.Start()
	rep.record(r, "SIGKILL NATS node", from, r.targets(), o)
	r.waitSpread(60 * time.Second)
	judge("SIGKILL NATS node")

	// 4. Every replica SIGTERMed at once (each releases its leases), then
	// all started again.
	o = r.waitSpread(60 * time.Second)
	t.Log("fault 4: SIGTERM every replica, start them again")
	from = time.Now()
	r.stopAll(syscall.SIGTERM)
	for _, id := range []string{"r1", "r2", "r3"} {
		r.start(id)
	}
	rep.record(r, "restart all", from, r.targets(), o)
	r.waitSpread(60 * time.Second)
	judge("restart all")

	// 5. A fourth replica joins and takes a share; then one leaves
	// (SIGTERM) and the others take its share. The spread is even again
	// each time (waitSpread).
	o = r.waitSpread(60 * time.Second)
	t.Log("fault 5: replica r4 added")
	from = time.Now()
	r.start("r4")
	after := r.waitSpread(60 * time.Second)
	if held(after)["r4"] == 0 {
		r.fail("r4 joined and took no share: %v", held(after))
	}
	rep.record(r, "replica added", from, moved(o, after), o)
	o = after
	victim = o[r.targets()[2]].Replica
	lost = targetsOf(o, victim)
	t.Logf("fault 5: replica %s removed (SIGTERM), owner of %v", victim, lost)
	from = time.Now()
	if err := r.replica(victim).end(syscall.SIGTERM); err != nil {
		r.fail("%s after SIGTERM: %v", victim, err)
	}
	rep.record(r, "replica removed", from, lost, o)
	t.Logf("spread: %v", held(r.waitSpread(60*time.Second)))
	judge("replica added, removed")
	r.stopChurnAndWait()
}

// targetsOf lists the targets o leases to replica, sorted.
func targetsOf(o map[watcher.Target]haOwner, replica string) []watcher.Target {
	var out []watcher.Target
	for t, w := range o {
		if w.Replica == replica {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b watcher.Target) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// moved lists the targets whose owner differs between a and b, sorted.
func moved(a, b map[watcher.Target]haOwner) []watcher.Target {
	var out []watcher.Target
	for t, w := range b {
		if a[t].Replica != w.Replica {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b watcher.Target) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// record waits for a committed scan of each of ts after the fault at from
// and records how long each took, who held it before (before) and who
// scanned it first after; the gaps are filled in by gaps once the spread
// is stable again.
func (h *haReport) record(r *haRig, fault string, from time.Time, ts []watcher.Target, before map[watcher.Target]haOwner) {
	r.t.Helper()
	took := r.waitScanned(from, ts, 60*time.Second)
	for _, t := range ts {
		h.Takeovers = append(h.Takeovers, haTakeover{Fault: fault, Target: t.Region, From: before[t].Replica,
			To: r.scannedBy(t, from), Seconds: took[t].Seconds(), at: from})
	}
}

// gaps fills in the longest scan gaps of the takeovers recorded since
// fault's, up to now.
func (h *haReport) gaps(r *haRig) {
	r.t.Helper()
	now := time.Now()
	for i := range h.Takeovers {
		k := &h.Takeovers[i]
		if k.GapSeconds != 0 {
			continue
		}
		t := watcher.Target{Account: "prod", Region: k.Target}
		k.GapSeconds = r.longestGaps(k.at, now, []watcher.Target{t})[t].Seconds()
	}
}

// addOracle records the oracle's verdict after a fault.
func (h *haReport) addOracle(fault string, rep oracle.Report) {
	h.Oracle = append(h.Oracle, fmt.Sprintf("%s: events=%d instances=%d lost=%d false=%d forks=%d conflicting_ids=%d chain=%d",
		fault, rep.Events, rep.Instances, rep.Count("lost"), rep.Count("unjustified"), rep.Count("fork"), rep.Count("conflict"),
		rep.Count("chain")))
}

// waitStandDown waits until replica p, woken after losing the leases of
// ts, logs each lost and its target stopped, and checks that it took none
// of them again but by a fresh claim after that (its log from mark on).
func (r *haRig) waitStandDown(p *haProc, mark int, ts []watcher.Target) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		woke := p.log.String()[mark:]
		done := true
		for _, t := range ts {
			done = done && strings.Contains(woke, `msg="target handed over: stopped" replica=`+p.id+` target=`+t.String()+` `)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			r.fail("%s did not stand down for %v within 30s of SIGCONT", p.id, ts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	woke := p.log.String()[mark:]
	for _, t := range ts {
		stopped := strings.Index(woke, `msg="target handed over: stopped" replica=`+p.id+` target=`+t.String()+` `)
		lost := strings.Index(woke, `msg="lease lost" replica=`+p.id+` target=`+t.String()+` `)
		taken := strings.Index(woke, `msg="lease taken" replica=`+p.id+` target=`+t.String()+` `)
		if lost < 0 || lost > stopped {
			r.fail("%s stopped %s without logging its lease lost first", p.id, t)
		}
		if taken >= 0 && taken < lost {
			r.fail("%s took %s again before standing down", p.id, t)
		}
	}
}

// streamLeader waits until stream has a leader other than not and
// returns its server name.
func (r *haRig) streamLeader(stream, not string) string {
	r.t.Helper()
	var leader string
	haWaitFor(r.t, 60*time.Second, "a leader of "+stream+" other than "+not, func() bool {
		ctx, cancel := context.WithTimeout(r.t.Context(), time.Second)
		defer cancel()
		info, err := streamInfo(ctx, r.js, stream)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != "" && leader != not
	})
	return leader
}

// node returns the cluster node named name.
func (r *haRig) node(name string) interface {
	Kill()
	Start()
} {
	r.t.Helper()
	for _, n := range r.cluster.Nodes {
		if n.Name() == name {
			return n
		}
	}
	r.t.Fatalf("no node named %q", name)
	return nil
}

// stopAll signals every running replica at once and waits until all
// exited; with SIGTERM each must exit cleanly.
func (r *haRig) stopAll(sig syscall.Signal) {
	r.t.Helper()
	var wg sync.WaitGroup
	ids := r.running()
	errs := make([]error, len(ids))
	for i, id := range ids {
		p := r.replica(id)
		wg.Go(func() { errs[i] = p.end(sig) })
	}
	wg.Wait()
	for _, err := range errs {
		if sig == syscall.SIGTERM && err != nil {
			r.fail("replica after SIGTERM: %v", err)
		}
	}
}
