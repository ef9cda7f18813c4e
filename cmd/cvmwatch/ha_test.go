package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// haReplica is one in-process replica of an HA test.
type haReplica struct {
	d      *daemon
	cancel context.CancelFunc
	done   chan error
}

func startHAReplica(t testing.TB, id, urls string, sim *cvmsim.Server, regions []string, ttl time.Duration, log io.Writer) *haReplica {
	t.Helper()
	cfg := &Config{
		Accounts: []AccountConfig{{
			Name: "prod", Regions: regions, Endpoint: sim.URL(),
			Credentials: &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey},
		}},
		Poll:   PollConfig{Interval: Duration(time.Second)},
		Events: EventsConfig{AnnounceBaseline: true},
		NATS:   NATSConfig{URL: urls},
		HTTP:   HTTPConfig{Listen: "127.0.0.1:0"},
		HA:     HAConfig{Enabled: true, ReplicaID: id, LeaseTTL: Duration(ttl)},
	}
	cfg.applyDefaults()
	if errs := cfg.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	d, err := openDaemon(t.Context(), cfg, slog.New(slog.NewTextHandler(log, nil)).With("test_replica", id))
	if err != nil {
		t.Fatalf("replica %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &haReplica{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(); d.Close() })
	return r
}

// stop ends the replica's Run (idempotent).
func (r *haReplica) stop() {
	r.cancel()
	if r.done != nil {
		<-r.done
		r.done = nil
	}
}

func (r *haReplica) held() map[watcher.Target]bool {
	out := map[watcher.Target]bool{}
	for _, l := range r.d.ha.Held() {
		out[l.Target] = true
	}
	return out
}

// haWaitFor polls cond every 50ms until it holds, failing after within.
func haWaitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// Two replicas on a 3-node cluster share four targets; the owner of two of
// them dies (its connection cut, nothing released); the survivor takes its
// targets over within the lease TTL plus a scan, continues every chain,
// and the oracle finds the whole stream clean: nothing lost, nothing
// false, no fork, no conflicting id.
func TestHATakeoverOnAClusterLosesNothingAndForksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	regions := []string{"ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu"}
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: regions, InstancesPerRegion: 20, Seed: 3, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c := startNATSCluster(t)
	urls := c.urls()
	clusterWait(t, 60*time.Second, "cluster ready", func(ctx context.Context) error {
		nc, err := nats.Connect(urls)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(ctx)
		return err
	})
	log := newLogFile(t)
	const ttl = 2 * time.Second
	a := startHAReplica(t, "a", urls, sim, regions, ttl, log)
	b := startHAReplica(t, "b", urls, sim, regions, ttl, log)

	haWaitFor(t, 30*time.Second, "targets spread over both replicas", func() bool {
		ha, hb := a.held(), b.held()
		for tg := range ha {
			if hb[tg] {
				return false
			}
		}
		return len(ha) == 2 && len(hb) == 2
	})
	change := func(n int) {
		for _, in := range sim.Instances("")[:n] {
			if in.InstanceState == "RUNNING" {
				sim.SetState(in.InstanceId, "STOPPED")
			} else if in.InstanceState == "STOPPED" {
				sim.SetState(in.InstanceId, "RUNNING")
			}
		}
	}
	time.Sleep(2 * time.Second) // two scans on each side, then changes
	change(12)
	time.Sleep(2 * time.Second)

	// Death of a: its connection is cut (no release, no renewal), then its
	// loops stop.
	a.d.nc.Close()
	a.stop()
	took := haWaitFor(t, ttl+5*time.Second, "b holds every target", func() bool { return len(b.held()) == 4 })
	t.Logf("takeover: b holds all 4 targets %s after a died (lease_ttl %s)", took.Round(time.Millisecond), ttl)
	change(30)

	deadline := time.Now().Add(60 * time.Second)
	for {
		now := time.Now()
		msgs, err := readStream(t.Context(), urls)
		if err == nil {
			rep := oracle.Check(msgs, sim.History(), oracle.Options{Announced: true, MustSee: 2 * time.Second, End: now})
			for _, v := range rep.Violations {
				if v.Kind != "lost" {
					t.Fatalf("oracle:\n%s\nlog: %s", rep, tail(log.String(), 60))
				}
			}
			if rep.OK() {
				t.Logf("oracle: %d events, %d instances, 0 violations", rep.Events, rep.Instances)
				break
			}
			if now.After(deadline) {
				t.Fatalf("stream incomplete:\n%s\nlog: %s", rep, tail(log.String(), 60))
			}
		} else if now.After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
}
