package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// soakEnv sets the chaos soak's duration (e.g. CVMWATCH_SOAK=30m); without
// it TestSoakChaos runs its one-minute version.
const soakEnv = "CVMWATCH_SOAK"

// soakParams size a soak.
type soakParams struct {
	duration  time.Duration
	instances int     // per region, two regions
	ops       float64 // lifecycle operations per second across the fleet
	interval  time.Duration
	mustSee   time.Duration
	seed      uint64
}

// soakStats is what the soak reports.
type soakStats struct {
	watcherKills, crashPoints, sigterms, natsRestarts, faultsAdded int
}

// TestSoakChaos runs the product as users do (a cvmwatch process, a
// nats-server process, the simulator) under continuous churn while the
// watcher is SIGKILLed (at random and at crash points) or SIGTERMed, NATS is
// SIGKILLed and restarted, and API faults are injected; then the faults stop,
// the fleet goes quiet, and the oracle checks the whole stream against the
// simulator's history. The default run lasts about a minute; CVMWATCH_SOAK
// sets a longer one.
func TestSoakChaos(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		skipBecause(t, "the soak is skipped under -short")
	}
	p := soakParams{duration: 45 * time.Second, instances: 1000, ops: 15, interval: 2 * time.Second, seed: 1}
	if v := os.Getenv(soakEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", soakEnv, v, err)
		}
		p = soakParams{duration: d, instances: 2500, ops: 25, interval: 3 * time.Second, seed: uint64(time.Now().UnixNano())}
	}
	// The watcher is blind while it is down (a kill, NATS down at its
	// start-up) and while injected faults fail its pages, so a state held
	// two intervals must be in the chain only if three clean scans of its
	// region also ran while it was held (see oracle.Options.Scans).
	p.mustSee = 2 * p.interval
	runSoak(t, p)
}

func runSoak(t *testing.T, p soakParams) {
	// Both binaries are built before the clock starts: a cold build takes a
	// minute or more.
	cvmwatchBinary(t)
	natstest.ServerBinary(t)
	start := time.Now()
	// Pauses and actions come from separate generators, so that a crash
	// point firing (which skips an action) does not shift the actions.
	rng := rand.New(rand.NewPCG(p.seed, 99))
	pause := rand.New(rand.NewPCG(p.seed, 98))
	regions := []string{"ap-guangzhou", "ap-shanghai"}
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: regions, InstancesPerRegion: p.instances, Seed: int64(p.seed)})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	nproc := natstest.StartServer(t)
	cfg := daemonConfig{
		DataDir: filepath.Join(t.TempDir(), "data"), SimURL: sim.URL(), NATSURL: nproc.URL(),
		Regions: regions, Interval: p.interval, Announce: true,
		// The oracle judges against every clean scan window: keep them all.
		NATSExtra: "  scan_keep: 1000000\n",
	}.write(t)
	log := newLogFile(t)
	var st soakStats
	d := startDaemon(t, cfg, log)

	ctx, stopChurn := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	ch := &churner{sim: sim, regions: regions, target: p.instances, rng: rand.New(rand.NewPCG(p.seed, 7))}
	wg.Go(func() { ch.run(ctx, p.ops) })

	crashPoints := []string{watcher.CrashAfterScan, watcher.CrashAfterCommit, watcher.CrashAfterPublish, watcher.CrashMidAck}
	restart := func(env ...string) { d = startDaemon(t, cfg, log, env...) }
	// The first actions are one of each kind, so that even a short run
	// kills both processes and injects a fault; the rest are random.
	forced := []float64{0.5 /* nats */, 0.1 /* watcher */, 0.9 /* fault */, 0.35 /* SIGTERM */}
	for deadline := start.Add(p.duration); time.Now().Before(deadline); {
		time.Sleep(time.Duration(1500+pause.IntN(3500)) * time.Millisecond)
		if d.exited() { // a crash point fired
			if !killedBy(d.err, syscall.SIGKILL) {
				t.Fatalf("watcher exited by itself: %v\n%s", d.err, tail(log.String(), 40))
			}
			st.crashPoints++
			restart()
			continue
		}
		x := rng.Float64()
		if len(forced) > 0 {
			x, forced = forced[0], forced[1:]
		}
		t.Logf("%s chaos: %s", time.Now().UTC().Format("15:04:05.000"), chaosName(x))
		switch {
		case x < 0.30:
			d.signal(syscall.SIGKILL)
			st.watcherKills++
			if rng.IntN(3) == 0 {
				restart(crashEnv + "=" + crashPoints[rng.IntN(len(crashPoints))])
			} else {
				restart()
			}
		case x < 0.40:
			if err := d.signal(syscall.SIGTERM); err != nil {
				t.Fatalf("watcher after SIGTERM: %v\n%s", err, tail(log.String(), 40))
			}
			st.sigterms++
			restart()
		case x < 0.65:
			nproc.Kill()
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
			nproc.Start()
			st.natsRestarts++
		default:
			f := randomFault(rng)
			t.Logf("  fault %+v", f)
			sim.AddFault(f)
			st.faultsAdded++
		}
	}

	// Quiet: no churn, no faults, a watcher without a crash point.
	stopChurn()
	wg.Wait()
	sim.ClearFaults()
	if d.exited() {
		st.crashPoints++
	}
	d.signal(syscall.SIGKILL)
	restart()
	quiet := time.Now()
	t.Logf("chaos over after %s: %d operations; waiting for the watcher to catch up", time.Since(start).Round(time.Second), ch.ops)

	opts := oracle.Options{Regions: regions, Announced: true, MustSee: p.mustSee}
	converge(t, nproc.URL(), sim, quiet, p.interval, opts, log)
	// Stop the watcher cleanly and judge the stream once more: nothing
	// arrives after the quiet check that would break it.
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Errorf("final SIGTERM: %v", err)
	}
	msgs, err := readStream(t.Context(), nproc.URL())
	if err != nil {
		t.Fatal(err)
	}
	scans, clean, err := readScans(t.Context(), nproc.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.End, opts.Scans = time.Now(), clean
	report := oracle.Check(msgs, sim.History(), opts)
	summary := fmt.Sprintf("soak summary: duration=%s instances=%d (2 regions x %d, %d lifecycle operations) scans=%d summaries_stored=%d "+
		"events_checked=%d truth_changes=%d watcher_sigkills=%d crash_point_kills=%d sigterms=%d nats_sigkills=%d "+
		"faults_added=%d faults_injected=%d violations=%d",
		time.Since(start).Round(time.Second), 2*p.instances, p.instances, ch.ops, strings.Count(log.String(), " msg=scan "), scans,
		report.Events, report.TruthSteps, st.watcherKills, st.crashPoints, st.sigterms, st.natsRestarts, st.faultsAdded,
		sim.Stats().FaultsInjected, len(report.Violations))
	t.Log(summary)
	if os.Getenv(soakEnv) != "" {
		fmt.Println(summary)
	}
	if !report.OK() {
		t.Fatalf("oracle:\n%s", report)
	}
	if report.Events == 0 || st.watcherKills+st.crashPoints == 0 || st.natsRestarts == 0 {
		t.Fatalf("the soak proved nothing: %s", summary)
	}
}

// converge reads the stream until the oracle finds nothing lost (the watcher
// caught up after the quiet point), failing at once on a violation that
// waiting cannot cure (a false, duplicate or broken event).
func converge(t *testing.T, url string, sim *cvmsim.Server, quiet time.Time, interval time.Duration, opts oracle.Options, log fmt.Stringer) oracle.Report {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		now := time.Now()
		msgs, err := readStream(t.Context(), url)
		var clean []oracle.ScanWindow
		if err == nil {
			_, clean, err = readScans(t.Context(), url)
		}
		if err == nil {
			opts.End, opts.Scans = now, clean
			r := oracle.Check(msgs, sim.History(), opts)
			for _, v := range r.Violations {
				if v.Kind != "lost" {
					t.Fatalf("oracle:\n%s\nlogs: %s", r, keepLog(log))
				}
			}
			if r.OK() && now.Sub(quiet) >= 2*interval {
				return r
			}
			if now.After(deadline) {
				t.Fatalf("the watcher did not catch up within 2m of the quiet point:\n%s\nwatcher log: %s", r, keepLog(log))
			}
		} else if now.After(deadline) {
			t.Fatalf("read stream: %v", err)
		}
		time.Sleep(interval)
	}
}

func chaosName(x float64) string {
	switch {
	case x < 0.30:
		return "SIGKILL watcher"
	case x < 0.40:
		return "SIGTERM watcher"
	case x < 0.65:
		return "SIGKILL nats-server"
	}
	return "API fault"
}

// keepLog copies a failed run's watcher log out of the test's temporary
// directory and returns its path.
func keepLog(l fmt.Stringer) string {
	f, err := os.CreateTemp("", "cvmwatch-fault-*.log")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	f.WriteString(l.String())
	return f.Name()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// randomFault draws an API fault that lies about nothing the watcher must
// believe: failures, slowness, malformed and hostile answers, conflicting
// duplicates, lying totals and real offset shifts. (Rewriting every state
// to an unknown one is a lie the watcher is designed to pass through; true
// unknown states come from the churn.)
func randomFault(rng *rand.Rand) cvmsim.Fault {
	f := cvmsim.Fault{Rate: 0.2 + rng.Float64()*0.4, Count: 3 + rng.IntN(20)}
	switch rng.IntN(14) {
	case 0:
		f.Kind, f.Code = cvmsim.FaultError, "RequestLimitExceeded"
		f.Rate, f.Count = 0.9, 20+rng.IntN(40) // a throttling storm
	case 1:
		f.Kind, f.Code = cvmsim.FaultError, []string{"InternalError", "InternalServerError", "ServiceUnavailable"}[rng.IntN(3)]
	case 2:
		f.Kind, f.Delay = cvmsim.FaultLatency, cvmsim.Duration(time.Duration(200+rng.IntN(1500))*time.Millisecond)
	case 3:
		f.Kind, f.Count = cvmsim.FaultTimeout, 1+rng.IntN(2)
	case 4:
		f.Kind = cvmsim.FaultTruncated
	case 5:
		f.Kind = cvmsim.FaultHTML502
	case 6:
		f.Kind = []cvmsim.FaultKind{cvmsim.FaultEmptyObject, cvmsim.FaultEmptyResponse, cvmsim.FaultNonJSON}[rng.IntN(3)]
	case 7:
		f.Kind = cvmsim.FaultNullFields
	case 8:
		f.Kind, f.TotalCount = cvmsim.FaultLyingTotal, []int{0, 5, 1 << 30, 99999}[rng.IntN(4)]
	case 9:
		// A conflicting duplicate hides an instance's state from a scan: a
		// few at a time, so no instance stays unreadable for three scans.
		f.Kind, f.State, f.Count = cvmsim.FaultDuplicate, "STOPPED", 1+rng.IntN(2)
	case 10:
		f.Kind = cvmsim.FaultShiftInsert
	case 11:
		f.Kind = cvmsim.FaultShiftRelease
	case 12:
		f.Kind = cvmsim.FaultHostileIDs
	default:
		f.Kind, f.Code = cvmsim.FaultError, "AuthFailure.SignatureFailure"
		f.Count = 1 + rng.IntN(3)
	}
	return f
}
