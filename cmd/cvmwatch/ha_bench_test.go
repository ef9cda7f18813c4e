package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// BenchmarkHATakeover measures, on one 3-node NATS cluster (processes of
// the pinned server, loopback), in one run:
//
//   - takeover: two in-process replicas (lease_ttl 2s, poll 1s) share four
//     targets, two each; one of them dies (its connection cut,
//     nothing released); the time from its death to the first scan its
//     successor commits for each of its two targets; then it is restarted
//     and takes its two back before the next death. CVMWATCH_BENCH_TAKEOVERS deaths (default 8).
//   - steady state, a single-process daemon (bbolt, normal publisher) and
//     then one HA replica (journal store, fenced atomic batches of up to
//     1,000) on the same simulated target of 10,000 instances at the API
//     quota: the scan ratio (scan time / (pages / poll.rate_limit)) and the
//     relay throughput for a burst of 2,000 events committed at once
//     (events/s from the first to the last event delivered, and from the
//     commit to the last: a batch delivers nothing before it commits).
//
// Run: go test -run '^$' -bench HATakeover -benchtime 1x ./cmd/cvmwatch/
func BenchmarkHATakeover(b *testing.B) {
	c := natstest.StartCluster(b, 3)
	c.WaitReady(b)
	urls := c.URLs()
	kills := 8
	if v, err := strconv.Atoi(os.Getenv("CVMWATCH_BENCH_TAKEOVERS")); err == nil && v > 0 {
		kills = v
	}
	for b.Loop() {
		samples := benchTakeovers(b, urls, kills)
		slices.Sort(samples)
		b.ReportMetric(pct(samples, 50).Seconds(), "takeover-p50-s")
		b.ReportMetric(pct(samples, 99).Seconds(), "takeover-p99-s")
		b.Logf("takeover over %d targets moved by %d deaths (lease_ttl 2s, poll 1s): p50 %v, p99 %v, min %v, max %v",
			len(samples), kills, pct(samples, 50), pct(samples, 99), samples[0], samples[len(samples)-1])

		single := benchSteady(b, urls, false)
		ha := benchSteady(b, urls, true)
		b.ReportMetric(single.scanRatio, "scan-ratio-single")
		b.ReportMetric(ha.scanRatio, "scan-ratio-ha")
		b.ReportMetric(single.eventsPerSec, "relay-single-events/s")
		b.ReportMetric(ha.eventsPerSec, "relay-ha-events/s")
		b.ReportMetric(ha.eventsPerSec/single.eventsPerSec, "relay-ha/single")
		b.ReportMetric(single.fromCommitPerSec, "relay-single-from-commit-events/s")
		b.ReportMetric(ha.fromCommitPerSec, "relay-ha-from-commit-events/s")
		b.ReportMetric(ha.fromCommitPerSec/single.fromCommitPerSec, "relay-ha/single-from-commit")
		b.Logf("single process (bbolt, publish window %d): scan ratio %.3f over %d scans, relay %.0f events/s (%.0f from the commit)",
			publisher.DefaultWindow, single.scanRatio, single.scans, single.eventsPerSec, single.fromCommitPerSec)
		b.Logf("HA replica (journal store, fenced batches): scan ratio %.3f over %d scans, relay %.0f events/s (%.3f of single), %.0f from the commit (%.3f of single)",
			ha.scanRatio, ha.scans, ha.eventsPerSec, ha.eventsPerSec/single.eventsPerSec,
			ha.fromCommitPerSec, ha.fromCommitPerSec/single.fromCommitPerSec)
	}
}

// pct is the p-th percentile of sorted (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)]
}

// benchTakeovers kills the busier of two replicas kills times and returns
// the time to the successor's first committed scan of each target moved.
func benchTakeovers(b *testing.B, urls string, kills int) []time.Duration {
	regions := []string{"ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu"}
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: regions, InstancesPerRegion: 20, Seed: 5, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	const ttl = 2 * time.Second
	log := io.Discard
	start := func(id string) *haReplica { return startHAReplica(b, id, urls, sim, regions, ttl, log) }
	reps := []*haReplica{start("a"), start("b")}
	ids := []string{"a", "b"}
	var samples []time.Duration
	for range kills {
		benchWait(b, 60*time.Second, "one owner per target, each with a committed scan", func() bool {
			return benchStable(reps, len(regions))
		})
		victim := rand.IntN(2)
		moved := reps[victim].held()
		survivor := reps[1-victim]
		died := time.Now()
		reps[victim].d.nc.Close()
		reps[victim].stop()
		done := map[watcher.Target]bool{}
		benchWait(b, 60*time.Second, "the survivor scans every moved target", func() bool {
			for _, s := range survivor.d.watcher.Status() {
				if moved[s.Target] && !done[s.Target] && s.LastScan.After(died) {
					done[s.Target] = true
					samples = append(samples, time.Since(died))
				}
			}
			return len(done) == len(moved)
		})
		reps[victim] = start(ids[victim])
	}
	for _, r := range reps {
		r.stop() // releases its leases and leaves the registry, for the runs that follow
	}
	return samples
}

// benchStable reports whether every one of n targets is held by exactly one
// replica, which has committed a scan of it since it took it, and each
// replica holds its share (n / replicas): a restarted replica has taken
// its targets back.
func benchStable(reps []*haReplica, n int) bool {
	owners := map[watcher.Target]int{}
	for _, r := range reps {
		if len(r.d.ha.Held()) != n/len(reps) {
			return false
		}
		scanned := map[watcher.Target]time.Time{}
		for _, s := range r.d.watcher.Status() {
			scanned[s.Target] = s.LastScan
		}
		for _, l := range r.d.ha.Held() {
			if !scanned[l.Target].After(l.Since) {
				return false
			}
			owners[l.Target]++
		}
	}
	for _, k := range owners {
		if k != 1 {
			return false
		}
	}
	return len(owners) == n
}

// benchWait polls cond every 10ms; within only keeps a broken build from
// hanging.
func benchWait(b *testing.B, within time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type steadyResult struct {
	scans        int
	scanRatio    float64 // mean over the scans after the baseline
	eventsPerSec float64
	// fromCommitPerSec counts from the burst's commit to the outbox.
	fromCommitPerSec float64
}

// benchSteady runs one daemon (an HA replica, or a single process with its
// own stream and prefix on the same cluster) on a 10,000-instance target at
// the API quota: three scans after the baseline, then a burst of 2,000
// events committed at once, timed from the first to the last delivered.
func benchSteady(b *testing.B, urls string, ha bool) steadyResult {
	const instances, burst, scans = 10_000, 2_000, 3
	region := "ap-hongkong" // a target of its own: no journal of the takeover runs
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: []string{region}, InstancesPerRegion: instances, Seed: 6,
		Latency: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	var d *daemon
	var stop func()
	prefix, kind := "cvm", "ha"
	if ha {
		r := startHAReplica(b, "solo", urls, sim, []string{region}, 2*time.Second, io.Discard)
		d, stop = r.d, r.stop
	} else {
		prefix, kind = "single", "single"
		cfg := &Config{
			DataDir: b.TempDir(),
			Accounts: []AccountConfig{{Name: "prod", Regions: []string{region}, Endpoint: sim.URL(),
				Credentials: &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey}}},
			Poll: PollConfig{Interval: Duration(time.Second)},
			NATS: NATSConfig{URL: urls, Stream: "SINGLE", SubjectPrefix: prefix},
			HTTP: HTTPConfig{Listen: "127.0.0.1:0"},
		}
		cfg.applyDefaults()
		if errs := cfg.validate(); len(errs) > 0 {
			b.Fatal(errs)
		}
		d, err = openDaemon(b.Context(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		ctx, cancel := context.WithCancel(b.Context())
		ran := make(chan error, 1)
		go func() { ran <- d.Run(ctx) }()
		stop = func() { cancel(); <-ran }
	}
	defer stop()
	rate := d.cfg.Poll.RateLimit

	nc, err := nats.Connect(urls)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	summaries := make(chan publisher.ScanMessage, 16)
	if _, err := nc.Subscribe(prefix+".scan.>", func(m *nats.Msg) {
		var s publisher.ScanMessage
		if json.Unmarshal(m.Data, &s) == nil && s.Complete {
			summaries <- s
		}
	}); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var first, last time.Time
	got := 0
	if _, err := nc.Subscribe(prefix+".state.>", func(*nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if got == 0 {
			first = time.Now()
		}
		got++
		last = time.Now()
	}); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	var res steadyResult
	var sum float64
	timeout := time.After(5 * time.Minute)
	for i := 0; i < 1+scans; i++ {
		select {
		case s := <-summaries:
			if i == 0 {
				continue // the baseline
			}
			sum += float64(s.DurationMs) / 1000 / (float64(s.Pages) / rate)
			res.scans++
		case <-timeout:
			b.Fatalf("%s: %d of %d scans within 5 minutes", kind, i, 1+scans)
		}
	}
	res.scanRatio = sum / float64(res.scans)

	tg := watcher.Target{Account: "prod", Region: region}
	at := time.Now().UTC()
	events := make([]watcher.Event, burst)
	for i := range events {
		id := fmt.Sprintf("burst-%s-%05d", kind, i)
		events[i] = watcher.Event{ID: watcher.EventID(tg, id, 1, "RUNNING", "STOPPED"), Target: tg, InstanceID: id,
			From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: at, PreviousObservedAt: at}
	}
	mu.Lock()
	got = 0
	mu.Unlock()
	if _, _, err := d.store.Commit(b.Context(), tg, watcher.Commit{Events: events}); err != nil {
		b.Fatalf("%s: commit the burst: %v", kind, err)
	}
	committed := time.Now()
	benchWait(b, 5*time.Minute, kind+": every event of the burst delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got >= burst
	})
	mu.Lock()
	res.eventsPerSec = float64(burst-1) / last.Sub(first).Seconds()
	res.fromCommitPerSec = float64(burst) / last.Sub(committed).Seconds()
	mu.Unlock()
	return res
}
