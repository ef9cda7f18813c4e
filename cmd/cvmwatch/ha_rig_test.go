package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// haRig is the process-level HA harness: a 3-node NATS cluster of
// nats-server processes (natstest, the pinned module), the simulator with
// churn in the test process, and `cvmwatch run` processes with ha enabled,
// each with its own replica id, data dir and log. The lease bucket says
// who owns what; the scans stream says when a target was last scanned.
type haRig struct {
	t        *testing.T
	sim      *cvmsim.Server
	cluster  *natstest.Cluster
	regions  []string
	ttl      time.Duration
	interval time.Duration
	js       jetstream.JetStream // the test's own connection, reconnecting

	mu       sync.Mutex
	replicas map[string]*haProc

	churn     *churner
	stopChurn context.CancelFunc
	churnDone chan struct{}
}

// haProc is one replica process.
type haProc struct {
	id  string
	cfg string
	log *lockedFile
	p   *daemonProc
	// ended is set before the test ends the process on purpose; a
	// process that exits without it failed.
	ended bool
}

// haRegions are the rig's regions: one account, so one target per region.
var haRegions = []string{"ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu", "ap-nanjing", "ap-hongkong"}

// newHARig builds both binaries, starts the cluster and the simulator
// (instances per region) and connects the test to the cluster. No
// replica runs yet.
func newHARig(t *testing.T, instances int, ttl, interval time.Duration, seed uint64) *haRig {
	t.Helper()
	cvmwatchBinary(t)
	natstest.ServerBinary(t)
	sim, err := cvmsim.NewServer(cvmsim.Options{Regions: haRegions, InstancesPerRegion: instances, Seed: int64(seed), RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	r := &haRig{t: t, sim: sim, cluster: natstest.StartCluster(t, 3), regions: haRegions, ttl: ttl, interval: interval,
		replicas: map[string]*haProc{},
		churn:    &churner{sim: sim, regions: haRegions, target: instances, rng: rand.New(rand.NewPCG(seed, 7))}}
	nc, err := nats.Connect(r.cluster.URLs(), nats.Timeout(2*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return r
}

// targets are the rig's targets.
func (r *haRig) targets() []watcher.Target {
	out := make([]watcher.Target, len(r.regions))
	for i, region := range r.regions {
		out[i] = watcher.Target{Account: "prod", Region: region}
	}
	return out
}

// start runs replica id (a new process; its config and log are kept
// across restarts).
func (r *haRig) start(id string) *haProc {
	r.t.Helper()
	r.mu.Lock()
	rp := r.replicas[id]
	r.mu.Unlock()
	if rp == nil {
		rp = &haProc{id: id, log: newLogFile(r.t)}
		rp.cfg = daemonConfig{
			DataDir: filepath.Join(r.t.TempDir(), "data-"+id), SimURL: r.sim.URL(), NATSURL: r.cluster.URLs(),
			Regions: r.regions, Interval: r.interval, Announce: true,
			// The oracle judges against every clean scan window: keep them all.
			NATSExtra: "  scan_keep: 1000000\n",
			Extra:     fmt.Sprintf("ha:\n  enabled: true\n  replica_id: %s\n  lease_ttl: %s\n", id, r.ttl),
		}.write(r.t)
	}
	rp.p, rp.ended = startDaemon(r.t, rp.cfg, rp.log), false
	r.mu.Lock()
	r.replicas[id] = rp
	r.mu.Unlock()
	return rp
}

// replica returns replica id, which must have been started.
func (r *haRig) replica(id string) *haProc {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	rp, ok := r.replicas[id]
	if !ok {
		r.t.Fatalf("no replica %s", id)
	}
	return rp
}

// running lists the replicas whose process runs (possibly stopped by
// SIGSTOP), sorted.
func (r *haRig) running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, rp := range r.replicas {
		if rp.p != nil && !rp.p.exited() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// checkAlive fails the test if a replica exited that the test did not
// end.
func (r *haRig) checkAlive() {
	r.t.Helper()
	r.mu.Lock()
	var dead []string
	for id, rp := range r.replicas {
		if rp.p.exited() && !rp.ended {
			dead = append(dead, fmt.Sprintf("%s (%v)", id, rp.p.err))
		}
	}
	r.mu.Unlock()
	if len(dead) > 0 {
		r.fail("replicas exited by themselves: %v", dead)
	}
}

// end signals replica p on purpose and waits for it to exit.
func (p *haProc) end(sig syscall.Signal) error {
	p.ended = true
	return p.p.signal(sig)
}

// String is every replica's log, for a failure message (keepLog).
func (r *haRig) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	ids := make([]string, 0, len(r.replicas))
	for id := range r.replicas {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "===== replica %s =====\n%s\n", id, r.replicas[id].log.String())
	}
	for _, n := range r.cluster.Nodes {
		fmt.Fprintf(&b, "===== nats-server %s =====\n%s\n", n.Name(), tail(n.Log(), 200))
	}
	return b.String()
}

// fail fails the test with the logs kept in a file.
func (r *haRig) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s\nlogs: %s", fmt.Sprintf(format, args...), keepLog(r))
}

// haOwner is a lease as the bucket holds it.
type haOwner struct {
	Replica  string
	Revision uint64 // the KV revision of its last write
}

// owners reads the lease bucket: each leased target's owner. A read may
// be served by a follower, so it can lag by a round; callers wait on it,
// they never decide from one read.
func (r *haRig) owners() (map[watcher.Target]haOwner, error) {
	ctx, cancel := context.WithTimeout(r.t.Context(), 2*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, lease.DefaultBucket)
	if err != nil {
		return nil, err
	}
	out := map[watcher.Target]haOwner{}
	for _, t := range r.targets() {
		e, err := kv.Get(ctx, "lease."+t.Account+"."+t.Region)
		if err != nil {
			if err == jetstream.ErrKeyNotFound {
				continue
			}
			return nil, err
		}
		var v struct{ Replica string }
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, fmt.Errorf("lease %s: %w", e.Key(), err)
		}
		out[t] = haOwner{Replica: v.Replica, Revision: e.Revision()}
	}
	return out, nil
}

// mustOwners is owners, failing the test on an error.
func (r *haRig) mustOwners() map[watcher.Target]haOwner {
	r.t.Helper()
	var o map[watcher.Target]haOwner
	haWaitFor(r.t, 10*time.Second, "read the lease bucket", func() bool {
		var err error
		o, err = r.owners()
		return err == nil
	})
	return o
}

// held counts the leases of each replica in o.
func held(o map[watcher.Target]haOwner) map[string]int {
	n := map[string]int{}
	for _, w := range o {
		n[w.Replica]++
	}
	return n
}

// waitSpread waits until every target is leased, only to running
// replicas, no replica holding more than ceil(targets/replicas)+1, and
// the owners have not changed for a lease TTL (stable); it returns them.
func (r *haRig) waitSpread(within time.Duration) map[watcher.Target]haOwner {
	r.t.Helper()
	var last map[watcher.Target]haOwner
	var since time.Time
	deadline := time.Now().Add(within)
	for {
		r.checkAlive()
		o, err := r.owners()
		var registered []string
		if err == nil {
			registered, err = r.registered()
		}
		if err == nil {
			live := r.running()
			ok := len(o) == len(r.regions) && slices.Equal(registered, live)
			for _, w := range o {
				ok = ok && slices.Contains(live, w.Replica)
			}
			if !ok || !sameOwners(o, last) {
				last, since = o, time.Now()
			} else if time.Since(since) >= r.ttl {
				bound := (len(r.regions)+len(live)-1)/len(live) + 1
				for id, n := range held(o) {
					if n > bound {
						r.fail("replica %s holds %d targets once stable, more than ceil(%d/%d)+1 = %d: %v",
							id, n, len(r.regions), len(live), bound, held(o))
					}
				}
				return o
			}
		}
		if time.Now().After(deadline) {
			r.fail("targets not spread over %v within %s: owners %v (err %v)", r.running(), within, last, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// registered lists the replicas registered in the lease bucket, sorted.
func (r *haRig) registered() ([]string, error) {
	ctx, cancel := context.WithTimeout(r.t.Context(), 2*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, lease.DefaultBucket)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeysFiltered(ctx, "replica.*")
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range keys.Keys() {
		out = append(out, strings.TrimPrefix(k, "replica."))
	}
	slices.Sort(out)
	return out, nil
}

func sameOwners(a, b map[watcher.Target]haOwner) bool {
	if len(a) != len(b) {
		return false
	}
	for t, w := range a {
		if b[t].Replica != w.Replica {
			return false
		}
	}
	return true
}

// scanEnds returns, for each target, when each scan the scans stream
// holds that started at or after from ended, in order: each scan committed
// after from (a summary is published after its commit).
func (r *haRig) scanEnds(from time.Time) (map[watcher.Target][]time.Time, error) {
	ctx, cancel := context.WithTimeout(r.t.Context(), 5*time.Second)
	defer cancel()
	start := from.Add(-time.Second) // summaries are stored after the scan starts
	c, err := r.js.OrderedConsumer(ctx, "CVMWATCH_SCANS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"cvm.scan.>"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := map[watcher.Target][]time.Time{}
	for n, read := int(info.NumPending), 0; read < n; {
		batch, err := c.Fetch(min(n-read, 1000), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			read++
			var s publisher.ScanMessage
			if err := json.Unmarshal(m.Data(), &s); err != nil {
				return nil, fmt.Errorf("scan summary: %w", err)
			}
			started, err := time.Parse(time.RFC3339Nano, s.Started)
			if err != nil {
				return nil, fmt.Errorf("scan summary started: %w", err)
			}
			if !started.Before(from) {
				t := watcher.Target{Account: s.Account, Region: s.Region}
				out[t] = append(out[t], started.Add(time.Duration(s.DurationMs)*time.Millisecond))
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
	}
	for _, ends := range out {
		slices.SortFunc(ends, time.Time.Compare)
	}
	return out, nil
}

// waitScanned waits until each of ts has a scan committed after from and
// returns how long after from each one's first ended.
func (r *haRig) waitScanned(from time.Time, ts []watcher.Target, within time.Duration) map[watcher.Target]time.Duration {
	r.t.Helper()
	out := map[watcher.Target]time.Duration{}
	deadline := time.Now().Add(within)
	for {
		got, err := r.scanEnds(from)
		if err == nil {
			done := true
			for _, t := range ts {
				ends := got[t]
				done = done && len(ends) > 0
				if len(ends) > 0 {
					out[t] = ends[0].Sub(from)
				}
			}
			if done {
				return out
			}
		}
		if time.Now().After(deadline) {
			r.fail("no scan of %v committed within %s of %s (found %v, err %v)", ts, within, from.Format("15:04:05.000"), out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// longestGaps returns, for each of ts, the longest time between two
// consecutive committed scans (the first counted from the last scan
// before from), of the scans that ended by until: how long the target
// went unwatched around a fault at from.
func (r *haRig) longestGaps(from, until time.Time, ts []watcher.Target) map[watcher.Target]time.Duration {
	r.t.Helper()
	var ends map[watcher.Target][]time.Time
	haWaitFor(r.t, 30*time.Second, "read the scans stream", func() bool {
		var err error
		ends, err = r.scanEnds(from.Add(-3 * r.interval))
		return err == nil
	})
	out := map[watcher.Target]time.Duration{}
	for _, t := range ts {
		var prev time.Time
		for _, e := range ends[t] {
			if e.After(until) {
				break
			}
			if !prev.IsZero() && e.After(from) {
				out[t] = max(out[t], e.Sub(prev))
			}
			prev = e
		}
	}
	return out
}

// scannedBy returns the replica whose log shows the first scan of t
// committed at or after from ("" if none).
func (r *haRig) scannedBy(t watcher.Target, from time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, first := "", time.Time{}
	for id, rp := range r.replicas {
		for line := range strings.Lines(rp.log.String()) {
			if !strings.Contains(line, " msg=scan account="+t.Account+" region="+t.Region+" ") {
				continue
			}
			stamp, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			at, err := time.Parse(time.RFC3339Nano, stamp)
			if err != nil || at.Before(from) {
				continue
			}
			if best == "" || at.Before(first) {
				best, first = id, at
			}
			break
		}
	}
	return best
}

// startChurn runs the churn at ops operations per second until
// stopChurnAndWait.
func (r *haRig) startChurn(ops float64) {
	ctx, cancel := context.WithCancel(r.t.Context())
	r.stopChurn, r.churnDone = cancel, make(chan struct{})
	go func() { defer close(r.churnDone); r.churn.run(ctx, ops) }()
}

func (r *haRig) stopChurnAndWait() {
	if r.stopChurn != nil {
		r.stopChurn()
		<-r.churnDone
		r.stopChurn = nil
	}
}

// converge stops the churn and waits until the oracle finds the whole
// stream complete and clean (see converge); it returns the report, whose
// forks and conflicting ids the caller reports.
func (r *haRig) converge() oracle.Report {
	r.t.Helper()
	r.stopChurnAndWait()
	opts := oracle.Options{Regions: r.regions, Announced: true, MustSee: 2 * r.interval}
	return converge(r.t, r.cluster.URLs(), r.sim, time.Now(), r.interval, opts, r)
}

// pause SIGSTOPs a replica; resume SIGCONTs it.
func (p *haProc) pause()  { p.p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *haProc) resume() { p.p.cmd.Process.Signal(syscall.SIGCONT) }

// haTakeover is one measured takeover (or recovery): how long after the
// fault the target's first scan after it was committed.
type haTakeover struct {
	Fault   string  `json:"fault"`
	Target  string  `json:"target"`
	From    string  `json:"from,omitempty"` // the replica that lost it
	To      string  `json:"to,omitempty"`   // the replica that scanned it next
	Seconds float64 `json:"seconds"`
	// GapSeconds is the longest time between two consecutive committed
	// scans of the target around the fault: how long it went unwatched.
	GapSeconds float64 `json:"gapSeconds"`

	at time.Time // the fault
}

// haReport collects takeovers and writes them (CVMWATCH_HA_REPORT).
type haReport struct {
	LeaseTTL  string       `json:"leaseTtl"`
	Interval  string       `json:"pollInterval"`
	Takeovers []haTakeover `json:"takeovers"`
	Oracle    []string     `json:"oracle"`
}

// haReportEnv names a file the HA fault test writes its takeover times
// to, as JSON.
const haReportEnv = "CVMWATCH_HA_REPORT"

func (h *haReport) log(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "takeover times (lease_ttl %s, poll interval %s): first scan committed after the fault, longest gap between two scans\n"+
		"%-18s %-13s %-5s %-5s %7s %7s\n", h.LeaseTTL, h.Interval, "fault", "target", "from", "to", "first_s", "gap_s")
	for _, k := range h.Takeovers {
		fmt.Fprintf(&b, "%-18s %-13s %-5s %-5s %7.2f %7.2f\n", k.Fault, k.Target, k.From, k.To, k.Seconds, k.GapSeconds)
	}
	for _, o := range h.Oracle {
		fmt.Fprintf(&b, "oracle after %s\n", o)
	}
	t.Log(b.String())
	if path := os.Getenv(haReportEnv); path != "" {
		data, err := json.MarshalIndent(h, "", "  ")
		if err == nil {
			err = os.WriteFile(path, append(data, '\n'), 0o644)
		}
		if err != nil {
			t.Errorf("%s: %v", haReportEnv, err)
		}
	}
}
