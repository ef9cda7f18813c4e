package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// haSoakEnv sets the HA chaos soak's duration (e.g. CVMWATCH_SOAK_HA=30m);
// without it TestSoakHAChaos is skipped.
const haSoakEnv = "CVMWATCH_SOAK_HA"

// haSoakStats counts what the HA soak did.
type haSoakStats struct {
	replicaKills, replicaPauses, longPauses, replicaTerms, natsKills int
}

// TestSoakHAChaos runs the HA rig (three replica processes on a 3-node
// cluster of nats-server processes, six targets) under continuous churn
// while, every 1.5-5 s, a random replica is SIGKILLed (restarted 0-3 s
// later), SIGSTOPped for 0.5-8 s (past its lease TTL half the time) and
// SIGCONTed, or SIGTERMed and restarted, or a random NATS node is
// SIGKILLed and restarted 0-3 s later; then the chaos stops, the fleet goes
// quiet, and the oracle checks the whole stream against the simulator's
// history: nothing lost, nothing false, no fork, no conflicting id.
func TestSoakHAChaos(t *testing.T) {
	v := os.Getenv(haSoakEnv)
	if v == "" {
		skipBecause(t, "the HA soak runs only with %s=<duration>", haSoakEnv)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", haSoakEnv, v, err)
	}
	const ttl, interval = 3 * time.Second, 2 * time.Second
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := newHARig(t, 300, ttl, interval, seed)
	rng, pause := rand.New(rand.NewPCG(seed, 99)), rand.New(rand.NewPCG(seed, 98))
	ids := []string{"r1", "r2", "r3"}
	start := time.Now()
	for _, id := range ids {
		r.start(id)
	}
	r.waitSpread(60 * time.Second)
	r.startChurn(15)
	var st haSoakStats
	// One of each kind first, so that even a short run does each; the
	// rest at random.
	forced := []float64{0.1, 0.4, 0.7, 0.9}
	for deadline := start.Add(d); time.Now().Before(deadline); {
		time.Sleep(time.Duration(1500+pause.IntN(3500)) * time.Millisecond)
		r.checkAlive()
		x, first := rng.Float64(), len(forced) > 0
		if first {
			x, forced = forced[0], forced[1:]
		}
		p := r.replica(ids[rng.IntN(len(ids))])
		switch {
		case x < 0.30:
			t.Logf("%s chaos: SIGKILL %s", time.Now().UTC().Format("15:04:05.000"), p.id)
			p.end(syscall.SIGKILL)
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
			r.start(p.id)
			st.replicaKills++
		case x < 0.60:
			hold := time.Duration(500+rng.IntN(7500)) * time.Millisecond
			if first {
				hold = ttl + 2*time.Second // the fencing case at least once
			}
			t.Logf("%s chaos: SIGSTOP %s for %s", time.Now().UTC().Format("15:04:05.000"), p.id, hold)
			p.pause()
			time.Sleep(hold)
			p.resume()
			st.replicaPauses++
			if hold > ttl {
				st.longPauses++
			}
		case x < 0.75:
			t.Logf("%s chaos: SIGTERM %s", time.Now().UTC().Format("15:04:05.000"), p.id)
			if err := p.end(syscall.SIGTERM); err != nil {
				r.fail("%s after SIGTERM: %v", p.id, err)
			}
			r.start(p.id)
			st.replicaTerms++
		default:
			n := r.cluster.Nodes[rng.IntN(len(r.cluster.Nodes))]
			t.Logf("%s chaos: SIGKILL nats-server %s", time.Now().UTC().Format("15:04:05.000"), n.Name())
			n.Kill()
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
			n.Start()
			st.natsKills++
		}
	}
	t.Logf("chaos over after %s: %d churn operations; waiting for the replicas to catch up", time.Since(start).Round(time.Second), r.churn.ops)
	r.checkAlive()
	r.waitSpread(120 * time.Second)
	report := r.converge()
	scans := 0
	if ends, err := r.scanEnds(start); err == nil {
		for _, e := range ends {
			scans += len(e)
		}
	}
	standDowns := 0
	for _, id := range ids {
		standDowns += strings.Count(r.replica(id).log.String(), `msg="target handed over: stopped"`)
	}
	summary := fmt.Sprintf("ha soak summary: duration=%s replicas=3 nats_nodes=3 targets=%d instances=%d (%d regions x %d, %d lifecycle operations) "+
		"lease_ttl=%s interval=%s scans_stored=%d handovers=%d events_checked=%d truth_changes=%d replica_sigkills=%d replica_sigstops=%d "+
		"(past the lease: %d) replica_sigterms=%d nats_sigkills=%d violations=%d forks=%d conflicting_ids=%d",
		time.Since(start).Round(time.Second), len(r.regions), len(r.regions)*300, len(r.regions), 300, r.churn.ops, ttl, interval, scans,
		standDowns, report.Events, report.TruthSteps, st.replicaKills, st.replicaPauses, st.longPauses, st.replicaTerms, st.natsKills,
		len(report.Violations), report.Count("fork"), report.Count("conflict"))
	t.Log(summary)
	fmt.Println(summary)
	if !report.OK() {
		t.Fatalf("oracle:\n%s", report)
	}
	if report.Events == 0 || st.replicaKills == 0 || st.natsKills == 0 || st.longPauses == 0 {
		t.Fatalf("the soak proved nothing: %s", summary)
	}
}
