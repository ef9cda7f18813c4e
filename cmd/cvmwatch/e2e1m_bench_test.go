package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// e2eBench is one run of the two-process benchmark: `cvmwatch sim` serving
// a fleet in one process, `cvmwatch run` watching it in another with its
// defaults (embedded NATS syncing every write, bbolt, hot set and
// enrichment on). The fleet is quiet until the idle scan is done, then
// churns. Every figure comes from the daemon's /metrics, the simulator's
// /_sim/stats and the two processes' /proc files.
type e2eBench struct {
	Instances int
	// ChurnPerMinute is the fraction of the fleet that starts a lifecycle
	// operation per minute once the idle scan is done.
	ChurnPerMinute float64
	DwellScale     float64
	Latency        time.Duration // added to every simulator request
	Interval       time.Duration // poll.interval
	ChurnScans     int           // complete scans with churn, after the idle one
	// Oracle judges the stream against the simulator's history (which holds
	// every instance's creation: kept to small fleets).
	Oracle  bool
	Every   time.Duration // how often the metrics are read
	Timeout time.Duration
	// Log, if set, gets each scan's line as soon as it is measured.
	Log func(string)
}

// e2eScan is what one complete scan cost, between the commit of the scan
// before it and its own.
type e2eScan struct {
	Kind     string // baseline, warm-up, idle, churn
	Pages    int
	Duration time.Duration // the scan's own (scan_duration_seconds)
	Commit   time.Duration // end of listing to durable commit (commit_duration_seconds)
	Events   int           // published in the window (scans, hot lookups)
	Refresh  int           // instances stored by the enrichment refresh in the window
	Throttle int
	// CPU and bytes written of each process over the window.
	WatcherCPU, SimCPU time.Duration
	WatcherWrite       int64
}

// e2eResult is what a run measured.
type e2eResult struct {
	Scans             []e2eScan
	RateLimit         float64 // poll.rate_limit of the daemon
	WatcherHWM        int64   // peak RSS, bytes
	SimHWM            int64
	SimStats          cvmsim.Stats
	Published, Stream int // events acknowledged (metrics), messages in the stream
	Report            *oracle.Report
}

// e2eSample is one reading of the daemon's metrics and both processes.
type e2eSample struct {
	m                  promText
	watcher, sim       procStat
	scans, incomplete  int
	at                 time.Time
	refreshInstancesOK bool
}

func runEndToEnd(tb testing.TB, b e2eBench) e2eResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), b.Timeout)
	defer cancel()

	simLog := newLogFile(tb)
	sim := startProc(tb, simLog, nil, "sim", "--listen", "127.0.0.1:0", "--instances", strconv.Itoa(b.Instances),
		"--seed", "11", "--churn", "0", "--dwell-scale", fmt.Sprint(b.DwellScale), "--latency", b.Latency.String())
	simURL := waitLogMatch(tb, ctx, sim, simLog, regexp.MustCompile(`serving the CVM API at (http://\S+)`))

	// Enrichment's first refresh runs at the whole DescribeInstances rate
	// (the default is 4 of its 35 req/s) so that it is over by the end of
	// the baseline scan and its writes stay out of the idle scan.
	cfg := daemonConfig{DataDir: filepath.Join(tb.TempDir(), "data"), SimURL: simURL, Listen: "127.0.0.1:0",
		Interval: b.Interval, Extra: "enrich:\n  refresh_rate: 35\n"}
	dLog := newLogFile(tb)
	start := time.Now()
	d := startDaemon(tb, cfg.write(tb), dLog)
	base := "http://" + waitLogMatch(tb, ctx, d, dLog, regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`))
	natsURL := waitLogMatch(tb, ctx, d, dLog, regexp.MustCompile(`embedded NATS server with JetStream started.* url=(nats://\S+)`))

	res := e2eResult{RateLimit: defaultRateLimit}
	sample := func() e2eSample {
		var s e2eSample
		var err error
		if s.m, err = scrape(ctx, base+"/metrics"); err != nil {
			tb.Fatalf("scrape: %v", err)
		}
		s.at = time.Now()
		s.watcher, s.sim = readProc(tb, d.cmd.Process.Pid), readProc(tb, sim.cmd.Process.Pid)
		s.scans = int(s.m.sum("cvmwatch_scans_total", `complete="true"`))
		s.incomplete = int(s.m.sum("cvmwatch_scans_total", `complete="false"`))
		s.refreshInstancesOK = int(s.m.sum("cvmwatch_enrich_instances_total", `kind="refresh"`)) >= b.Instances
		return s
	}
	prev := sample()
	churning := false
	for churn := 0; churn < b.ChurnScans; {
		select {
		case <-ctx.Done():
			tb.Fatalf("%d complete scans within %v; daemon log: %s", len(res.Scans), b.Timeout, tail(dLog.String(), 30))
		case <-d.done:
			tb.Fatalf("the daemon exited: %v; log: %s", d.err, tail(dLog.String(), 30))
		case <-sim.done:
			tb.Fatalf("the simulator exited: %v; log: %s", sim.err, tail(simLog.String(), 30))
		case <-time.After(b.Every):
		}
		cur := sample()
		if cur.incomplete != prev.incomplete {
			tb.Fatalf("an incomplete scan; daemon log: %s", tail(dLog.String(), 30))
		}
		if cur.scans == prev.scans {
			continue
		}
		if cur.scans != prev.scans+1 {
			tb.Fatalf("%d scans between two readings %v apart: read the metrics more often", cur.scans-prev.scans, b.Every)
		}
		s := e2eScan{
			Kind:         "baseline",
			Pages:        int(cur.m.sum("cvmwatch_scan_pages_total") - prev.m.sum("cvmwatch_scan_pages_total")),
			Duration:     seconds(cur.m.sum("cvmwatch_scan_duration_seconds_sum", `complete="true"`) - prev.m.sum("cvmwatch_scan_duration_seconds_sum", `complete="true"`)),
			Commit:       seconds(cur.m.sum("cvmwatch_commit_duration_seconds_sum") - prev.m.sum("cvmwatch_commit_duration_seconds_sum")),
			Events:       int(cur.m.sum("cvmwatch_relay_published_total") - prev.m.sum("cvmwatch_relay_published_total")),
			Refresh:      int(cur.m.sum("cvmwatch_enrich_instances_total", `kind="refresh"`) - prev.m.sum("cvmwatch_enrich_instances_total", `kind="refresh"`)),
			Throttle:     int(cur.m.sum("cvmwatch_api_throttles_total") - prev.m.sum("cvmwatch_api_throttles_total")),
			WatcherCPU:   cur.watcher.cpu - prev.watcher.cpu,
			SimCPU:       cur.sim.cpu - prev.sim.cpu,
			WatcherWrite: cur.watcher.writeBytes - prev.watcher.writeBytes,
		}
		switch {
		case churning:
			s.Kind = "churn"
			churn++
		case len(res.Scans) == 0:
		case !prev.refreshInstancesOK:
			s.Kind = "warm-up" // the first enrichment refresh was still running when it began
		default:
			s.Kind = "idle"
			rate := float64(b.Instances) * b.ChurnPerMinute / 60
			if err := cvmsim.SetChurnAt(ctx, simURL, rate); err != nil {
				tb.Fatalf("start churn: %v", err)
			}
			churning = true
		}
		res.Scans = append(res.Scans, s)
		if b.Log != nil {
			b.Log(res.scanLine(len(res.Scans) - 1))
		}
		prev = cur
	}

	final := sample()
	res.WatcherHWM, res.SimHWM = final.watcher.hwm, final.sim.hwm
	res.Published = int(final.m.sum("cvmwatch_relay_published_total"))
	simStats, err := cvmsim.FetchStats(ctx, simURL)
	if err != nil {
		tb.Fatalf("simulator stats: %v", err)
	}
	res.SimStats = simStats
	nc, err := nats.Connect(natsURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	stream, err := js.Stream(ctx, "CVMWATCH")
	if err != nil {
		tb.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	res.Stream = int(info.State.Msgs)
	if b.Oracle {
		res.Report = judgeEndToEnd(tb, ctx, natsURL, simURL, start)
	}
	if err := d.signal(syscall.SIGTERM); err != nil {
		tb.Errorf("daemon after SIGTERM: %v; log: %s", err, tail(dLog.String(), 30))
	}
	sim.signal(syscall.SIGTERM)
	return res
}

// judgeEndToEnd runs the oracle on the stream and the simulator's history
// over the changes made before the second-to-last clean scan began.
func judgeEndToEnd(tb testing.TB, ctx context.Context, natsURL, simURL string, start time.Time) *oracle.Report {
	tb.Helper()
	_, scans, err := readScans(ctx, natsURL)
	if err != nil {
		tb.Fatalf("scan summaries: %v", err)
	}
	if len(scans) < 3 {
		tb.Fatalf("%d clean scan summaries, want at least 3", len(scans))
	}
	msgs, err := readStream(ctx, natsURL)
	if err != nil {
		tb.Fatalf("read stream: %v", err)
	}
	history, err := cvmsim.FetchHistory(ctx, simURL)
	if err != nil {
		tb.Fatal(err)
	}
	rep := oracle.Check(msgs, history, oracle.Options{BaselineStart: start, BaselineEnd: scans[0].End, Scans: scans,
		Until: scans[len(scans)-2].Start})
	return &rep
}

// lines renders a run for a person.
func (r e2eResult) lines(b e2eBench) []string {
	out := []string{fmt.Sprintf("fleet %d instances in one region, simulator at 40 req/s per action with %v per request; "+
		"churn after the idle scan %.2f%%/min (%.2f lifecycle operations/s), dwell scale %v; poll.interval %v, poll.rate_limit %v",
		b.Instances, b.Latency, 100*b.ChurnPerMinute, float64(b.Instances)*b.ChurnPerMinute/60, b.DwellScale, b.Interval, r.RateLimit)}
	for i := range r.Scans {
		out = append(out, r.scanLine(i))
	}
	out = append(out,
		fmt.Sprintf("peak RSS (VmHWM): watcher %s, simulator %s", bytesText(r.WatcherHWM), bytesText(r.SimHWM)),
		fmt.Sprintf("simulator: %d DescribeInstancesStatus, %d DescribeInstances requests, %d throttled, peak %d requests in a second",
			r.SimStats.Requests[cvmsim.ActionDescribeInstancesStatus], r.SimStats.Requests[cvmsim.ActionDescribeInstances],
			r.SimStats.Throttled, r.SimStats.PeakPerSecond),
		fmt.Sprintf("events: %d acknowledged, %d in the stream", r.Published, r.Stream))
	if r.Report != nil {
		out = append(out, r.Report.Summary())
	}
	return out
}

// scanLine renders scan i; the limit is the single-API limit of a scan,
// pages / 40 s.
func (r e2eResult) scanLine(i int) string {
	s := r.Scans[i]
	limit := float64(s.Pages) / 40
	return fmt.Sprintf("scan %d (%s): %d pages in %.1f s = %.3f of the limit (%.1f s), %.3f of pages/rate_limit; "+
		"commit %.3f s; %d events, %d refreshed, %d throttles; CPU watcher %.1f s, sim %.1f s; watcher wrote %s",
		i, s.Kind, s.Pages, s.Duration.Seconds(), s.Duration.Seconds()/limit, limit, s.Duration.Seconds()/(float64(s.Pages)/r.RateLimit),
		s.Commit.Seconds(), s.Events, s.Refresh, s.Throttle, s.WatcherCPU.Seconds(), s.SimCPU.Seconds(), bytesText(s.WatcherWrite))
}

// check fails tb unless the run measured what it says: every scan read
// every page, an idle scan was taken, the stream holds every acknowledged
// event, the oracle (if run) found nothing wrong. No figure is a threshold.
func (r e2eResult) check(tb testing.TB, b e2eBench) {
	tb.Helper()
	pages := (b.Instances + 99) / 100
	kinds := map[string]int{}
	for i, s := range r.Scans {
		kinds[s.Kind]++
		if s.Pages < pages || s.Duration <= 0 || s.Commit <= 0 || s.WatcherCPU <= 0 {
			tb.Errorf("scan %d: %+v, want %d pages and every figure read", i, s, pages)
		}
	}
	if kinds["baseline"] != 1 || kinds["idle"] != 1 || kinds["churn"] != b.ChurnScans {
		tb.Errorf("scans by kind %v, want a baseline, an idle scan and %d with churn", kinds, b.ChurnScans)
	}
	if r.WatcherHWM <= 0 || r.SimHWM <= 0 {
		tb.Errorf("peak RSS watcher %d, simulator %d: not read", r.WatcherHWM, r.SimHWM)
	}
	if r.Stream < r.Published {
		tb.Errorf("the stream holds %d events, fewer than the %d acknowledged", r.Stream, r.Published)
	}
	if r.Report != nil && (!r.Report.OK() || r.Report.Events == 0) {
		tb.Errorf("oracle: %d violations, %d events:\n%s", len(r.Report.Violations), r.Report.Events, r.Report)
	}
}

// BenchmarkEndToEnd1M: 1,000,000 instances, 10,000 pages a scan; churn
// 0.1% of the fleet per minute. About 25 minutes; figures in
// docs/BENCHMARKS.md.
func BenchmarkEndToEnd1M(b *testing.B) {
	bench := e2eBench{Instances: 1_000_000, ChurnPerMinute: 0.001, DwellScale: 1, Latency: 100 * time.Millisecond,
		Interval: defaultInterval, ChurnScans: 2, Every: time.Second, Timeout: 55 * time.Minute,
		Log: func(s string) { fmt.Println(s) }}
	for b.Loop() {
		r := runEndToEnd(b, bench)
		for _, line := range r.lines(bench) {
			fmt.Println(line) // b.Log truncates a benchmark's output
		}
		r.check(b, bench)
		for i, s := range r.Scans {
			p := fmt.Sprintf("scan%d_%s_", i, strings.ReplaceAll(s.Kind, "-", ""))
			b.ReportMetric(s.Duration.Seconds()/(float64(s.Pages)/40), p+"ratio")
			b.ReportMetric(s.Commit.Seconds(), p+"commit_s")
			b.ReportMetric(s.WatcherCPU.Seconds(), p+"watcher_cpu_s")
			b.ReportMetric(s.SimCPU.Seconds(), p+"sim_cpu_s")
			b.ReportMetric(float64(s.Throttle), p+"throttles")
			if s.Kind == "idle" {
				b.ReportMetric(float64(s.WatcherWrite), "idle_scan_written_B")
			}
		}
		b.ReportMetric(float64(r.WatcherHWM)/(1<<20), "watcher_peak_rss_MiB")
		b.ReportMetric(float64(r.SimHWM)/(1<<20), "sim_peak_rss_MiB")
	}
}

// TestEndToEndTwoProcessesSmall runs the benchmark's harness at 5,000
// instances with fast churn, and checks that it measures what it says.
func TestEndToEndTwoProcessesSmall(t *testing.T) {
	t.Parallel()
	bench := e2eBench{Instances: 5_000, ChurnPerMinute: 0.1, DwellScale: 0.05, Latency: 20 * time.Millisecond,
		Interval: time.Second, ChurnScans: 2, Oracle: true, Every: 100 * time.Millisecond, Timeout: 2 * time.Minute}
	r := runEndToEnd(t, bench)
	for _, line := range r.lines(bench) {
		t.Log(line)
	}
	r.check(t, bench)
}

// procStat is what /proc says of a process.
type procStat struct {
	cpu        time.Duration // user + system
	writeBytes int64         // /proc/<pid>/io write_bytes: bytes it caused to be written to storage
	hwm        int64         // VmHWM: peak resident set, bytes
}

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

func readProc(tb testing.TB, pid int) procStat {
	tb.Helper()
	dir := fmt.Sprintf("/proc/%d/", pid)
	var p procStat
	stat, err := os.ReadFile(dir + "stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14, stime 15.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("%sstat: %s", dir, stat)
	}
	p.cpu = time.Duration(utime+stime) * clockTick
	p.writeBytes = procField(tb, dir+"io", "write_bytes:")
	p.hwm = procField(tb, dir+"status", "VmHWM:") * 1024 // kB
	return p
}

// procField reads the number after key in a /proc file of "key value" lines.
func procField(tb testing.TB, path, key string) int64 {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			v, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				tb.Fatalf("%s: %q", path, line)
			}
			return v
		}
	}
	tb.Fatalf("%s has no %s", path, key)
	return 0
}

// promText is one scrape of a Prometheus text exposition: each series
// ("name{labels}") and its value.
type promText map[string]float64

func scrape(ctx context.Context, url string) (promText, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := promText{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			return nil, fmt.Errorf("metrics line %q", line)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the series of name whose labels contain every one of labels.
func (m promText) sum(name string, labels ...string) float64 {
	var s float64
next:
	for k, v := range m {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue next
			}
		}
		s += v
	}
	return s
}

// waitLogMatch waits until log matches re and returns its first group.
func waitLogMatch(tb testing.TB, ctx context.Context, p *daemonProc, log *lockedFile, re *regexp.Regexp) string {
	tb.Helper()
	for {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			tb.Fatalf("the process exited (%v) before logging %s: %s", p.err, re, tail(log.String(), 20))
		case <-ctx.Done():
			tb.Fatalf("no %s in the log: %s", re, tail(log.String(), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// bytesText renders n bytes in KiB or MiB.
func bytesText(n int64) string {
	if n < 10<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
