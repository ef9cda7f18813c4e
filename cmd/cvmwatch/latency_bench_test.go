package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// latencyBench is one run of the detection latency benchmark: a churning
// simulated fleet, the daemon wired as `cvmwatch run` wires it with its
// defaults (embedded NATS, bbolt in a temporary directory, the official SDK),
// a silent baseline and then a fixed number of complete scans, judged by the
// oracle against the simulator's history.
type latencyBench struct {
	Instances int
	// ChurnPerMinute is the fraction of the fleet that starts a lifecycle
	// operation (create, stop, start, reboot, terminate) per minute.
	ChurnPerMinute float64
	// DwellScale scales the simulator's dwell times (1: the real ones).
	DwellScale float64
	// Latency is added to every simulator request.
	Latency time.Duration
	// Interval is poll.interval; zero: the default.
	Interval time.Duration
	// Scans is how many complete scans to run after the baseline (>= 3).
	Scans int
	// Timeout bounds the whole run.
	Timeout time.Duration
}

// latencyResult is what a run measured.
type latencyResult struct {
	Report oracle.Report
	// Operations judges the operation events (cycles polling missed,
	// named from the scans' DescribeInstances pages and the refresh);
	// Reboots counts the operation events that name a reboot.
	Operations oracle.OperationReport
	Reboots    int
	// Scans are the summaries of the complete scans, baseline first.
	Scans []publisher.ScanMessage
	// natsURL and simURL are where the run's stream and simulator listen
	// (while runLatency's during runs), baseline the baseline's window: what
	// `cvmwatch verify --sim` needs.
	natsURL, simURL string
	baseline        [2]time.Time
}

// runLatency runs b. The figures cover the true changes made after the
// baseline scan and no later than the start of the second-to-last scan,
// so that every change in the span was looked at by two complete scans
// (what confirming a disappearance takes) before the daemon stopped.
// during, if set, is called once the scans are done, while the daemon and
// the simulator still run.
func runLatency(tb testing.TB, b latencyBench, during func(latencyResult)) latencyResult {
	tb.Helper()
	if b.Scans < 3 {
		tb.Fatalf("latency bench: %d scans, want at least 3", b.Scans)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.Timeout)
	defer cancel()
	sim, err := cvmsim.NewServer(cvmsim.Options{
		InstancesPerRegion: b.Instances, Seed: 10, Latency: b.Latency,
		Churn: float64(b.Instances) * b.ChurnPerMinute / 60, DwellScale: b.DwellScale,
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer sim.Close()
	cfg := &Config{
		DataDir: tb.TempDir(),
		Accounts: []AccountConfig{{
			Name: "prod", Regions: []string{"ap-guangzhou"}, Endpoint: sim.URL(),
			Credentials: &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey},
		}},
		Poll: PollConfig{Interval: Duration(b.Interval)},
		NATS: NATSConfig{Listen: "127.0.0.1:0"},
		HTTP: HTTPConfig{Listen: "127.0.0.1:0"},
	}
	cfg.applyDefaults()
	if errs := cfg.validate(); len(errs) > 0 {
		tb.Fatal(errs)
	}

	start := time.Now()
	d, err := openDaemon(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	summaries := make(chan publisher.ScanMessage, 64)
	sub, err := d.nc.Subscribe(cfg.NATS.SubjectPrefix+".scan.>", func(m *nats.Msg) {
		var s publisher.ScanMessage
		if json.Unmarshal(m.Data, &s) == nil {
			summaries <- s
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer sub.Unsubscribe()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(runCtx) }()

	var res latencyResult
	for len(res.Scans) < 1+b.Scans {
		select {
		case s := <-summaries:
			if s.Complete && s.Rejected == 0 {
				res.Scans = append(res.Scans, s)
			}
		case <-ctx.Done():
			tb.Fatalf("latency bench: %d of %d complete scans within %v", len(res.Scans), 1+b.Scans, b.Timeout)
		}
	}
	stop() // the relays drain what the last scan committed
	if err := <-ran; err != nil {
		tb.Fatalf("daemon: %v", err)
	}

	opts := oracle.Options{Prefix: cfg.NATS.SubjectPrefix, BaselineStart: start}
	for i, s := range res.Scans {
		started, err := time.Parse(time.RFC3339Nano, s.Started)
		if err != nil {
			tb.Fatalf("scan summary started: %v", err)
		}
		w := oracle.ScanWindow{Region: s.Region, Start: started, End: started.Add(time.Duration(s.DurationMs+1) * time.Millisecond)}
		opts.Scans = append(opts.Scans, w)
		if i == 0 {
			opts.BaselineEnd = w.End
		}
	}
	opts.Until = opts.Scans[len(opts.Scans)-2].Start
	js, err := jetstream.New(d.nc)
	if err != nil {
		tb.Fatal(err)
	}
	stored, err := publisher.ReadStream(ctx, js, cfg.NATS.Stream, cfg.NATS.SubjectPrefix)
	if err != nil {
		tb.Fatal(err)
	}
	res.Report = oracle.Check(oracleMessages(stored), sim.History(), opts)
	operations, err := publisher.ReadAll(ctx, js, cfg.NATS.Stream, cfg.NATS.SubjectPrefix+".operation.>")
	if err != nil {
		tb.Fatal(err)
	}
	res.Operations = oracle.CheckOperations(oracleMessages(operations), oracleMessages(stored), sim.Operations(), opts)
	for _, m := range operations {
		if e, err := watcher.UnmarshalCloudEvent(m.Data); err == nil && e.Operation != nil && e.Operation.Name == cvmsim.ActionRebootInstances {
			res.Reboots++
		}
	}
	res.natsURL, res.simURL, res.baseline = d.embedded.ClientURL(), sim.URL(), [2]time.Time{opts.BaselineStart, opts.BaselineEnd}
	if during != nil {
		during(res)
	}
	return res
}

// lines renders a run for a person: the set-up, the scans and the figures.
func (r latencyResult) lines(b latencyBench) []string {
	var dur time.Duration
	throttles, pages := 0, 0
	for _, s := range r.Scans[1:] {
		dur += time.Duration(s.DurationMs) * time.Millisecond
		throttles += s.Throttles
		pages += s.Pages
	}
	n := len(r.Scans) - 1
	out := []string{
		fmt.Sprintf("fleet %d instances, churn %.1f%%/min (%.2f operations/s), dwell scale %v, request latency %v",
			b.Instances, 100*b.ChurnPerMinute, float64(b.Instances)*b.ChurnPerMinute/60, b.DwellScale, b.Latency),
		fmt.Sprintf("%d complete scans after the baseline: mean %v, %d pages per scan, %d throttles",
			n, (dur / time.Duration(n)).Round(time.Millisecond), pages/n, throttles),
		r.Report.Summary(),
		fmt.Sprintf("%s (%d of them reboots)", r.Operations, r.Reboots),
	}
	for i, v := range r.Report.Violations {
		if i == 10 {
			out = append(out, fmt.Sprintf("... and %d more violations", len(r.Report.Violations)-i))
			break
		}
		out = append(out, "violation: "+v.String())
	}
	return append(out, r.Report.Latency.Lines()...)
}

// BenchmarkDetectionLatency100k measures detection latency and capture
// rates at 100,000 instances with 1% of them starting a lifecycle per
// minute, the daemon at its defaults (poll.interval 30s, 35 req/s), the
// simulator at the real 40 req/s quota with 100 ms per request. One run
// takes about 6 minutes; the figures are in docs/BENCHMARKS.md.
func BenchmarkDetectionLatency100k(b *testing.B) {
	bench := latencyBench{Instances: 100_000, ChurnPerMinute: 0.01, DwellScale: 1, Latency: 100 * time.Millisecond,
		Scans: 10, Timeout: 30 * time.Minute}
	for b.Loop() {
		r := runLatency(b, bench, nil)
		for _, line := range r.lines(bench) {
			fmt.Println(line) // b.Log truncates a benchmark's output
		}
		if !r.Report.OK() || !r.Operations.OK() {
			b.Errorf("the stream breaks a guarantee: %d violations, %d in operation events", len(r.Report.Violations), len(r.Operations.Violations))
		}
		b.ReportMetric(float64(r.Operations.Events), "operation-events")
		l := r.Report.Latency
		b.ReportMetric(time.Duration(l.Transitional.Detection.P99).Seconds(), "p99-transitional-s")
		b.ReportMetric(time.Duration(l.Stable.Detection.P99).Seconds(), "p99-stable-s")
		b.ReportMetric(time.Duration(l.TransitionalToPresent.Detection.P99).Seconds(), "p99-transitional-present-s")
		b.ReportMetric(time.Duration(l.Disappearances.Detection.P99).Seconds(), "p99-disappearance-s")
		b.ReportMetric(l.Transitional.Rate, "capture-transitional")
		b.ReportMetric(l.Stable.Rate, "capture-stable")
	}
}

// TestDetectionLatencyBench runs the benchmark small and fast (200
// instances, 1 s scans, short dwell times) and checks that it measures:
// the stream keeps its guarantees, both classes of change happened and were
// detected, and every figure is consistent (percentiles in order, rates
// within [0, 1], each event stored no earlier than it was observed). It
// also checks that `cvmwatch verify --sim` prints the same figures, as
// text and as JSON. No figure is compared with a time.
func TestDetectionLatencyBench(t *testing.T) {
	t.Parallel()
	bench := latencyBench{Instances: 200, ChurnPerMinute: 1.5, DwellScale: 0.1, Interval: time.Second,
		Scans: 8, Timeout: 2 * time.Minute}
	r := runLatency(t, bench, func(r latencyResult) {
		args := []string{"verify", "--server", r.natsURL, "--sim", r.simURL,
			"--baseline-start", r.baseline[0].Format(time.RFC3339Nano), "--baseline-end", r.baseline[1].Format(time.RFC3339Nano)}
		code, out, errOut := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "measured detection latency (observedAt - true change), out of a transitional state: n=") {
			t.Fatalf("verify --sim: exit %d, no latency figures\n%s%s", code, out, errOut)
		}
		code, out, errOut = runCLI(t, append(args, "--json")...)
		var rep oracle.Report
		if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
			t.Fatalf("verify --sim --json: exit %d, %v\n%s%s", code, err, out, errOut)
		}
		if rep.Latency == nil || rep.Latency.Stable.Detection.N == 0 || len(rep.Latency.States) == 0 {
			t.Fatalf("verify --sim --json has no latency figures:\n%s", out)
		}
	})
	for _, line := range r.lines(bench) {
		t.Log(line)
	}
	if !r.Report.OK() {
		t.Fatalf("the stream breaks a guarantee:\n%s", r.Report)
	}
	if !r.Operations.OK() {
		t.Fatalf("operation events break a guarantee: %v", r.Operations.Violations)
	}
	l := r.Report.Latency
	if l == nil {
		t.Fatal("no latency figures")
	}
	if l.Cycle <= 0 {
		t.Fatalf("scan cycle %v not derived from %d scans", l.Cycle, len(r.Scans))
	}
	for name, c := range map[string]oracle.Class{"transitional": l.Transitional, "stable": l.Stable,
		"transitional into a present state": l.TransitionalToPresent} {
		if c.Changes == 0 || c.Detection.N == 0 {
			t.Fatalf("%s: %d true changes, %d detections: the run measured nothing", name, c.Changes, c.Detection.N)
		}
		if c.Captured > c.Changes || c.Rate < 0 || c.Rate > 1 {
			t.Errorf("%s: captured %d of %d (rate %v)", name, c.Captured, c.Changes, c.Rate)
		}
		if got, want := c.Stored.N, c.Detection.N; got != want {
			t.Errorf("%s: %d store times for %d detections", name, got, want)
		}
		for what, d := range map[string]oracle.Distribution{"detection": c.Detection, "stored": c.Stored} {
			if !(0 <= d.P50 && d.P50 <= d.P90 && d.P90 <= d.P99 && d.P99 <= d.Max) {
				t.Errorf("%s %s: percentiles out of order: %+v", name, what, d)
			}
		}
		// Each event is stored after it was observed (observedAt is rounded
		// up to the millisecond), so every order statistic of the store
		// latency is at least the detection's.
		ms := oracle.Seconds(time.Millisecond)
		if c.Stored.P50 < c.Detection.P50-ms || c.Stored.Max < c.Detection.Max-ms {
			t.Errorf("%s: stored %+v before detection %+v", name, c.Stored, c.Detection)
		}
	}
	for _, s := range l.States {
		if s.Entered == 0 || s.Seen > s.Entered || s.Bound <= 0 || s.Bound > 1 {
			t.Errorf("state %s: seen %d of %d, bound %v", s.State, s.Seen, s.Entered, s.Bound)
		}
	}
}
