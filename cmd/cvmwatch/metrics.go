package main

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// metrics implements watcher.Observer and cvm.Observer on Prometheus. Every
// label is bounded: accounts and regions come from the configuration, states
// and error codes from the API's finite sets (of Tencent's shape, see
// cvm.Observer, and at most maxCodes of them), never an instance ID.
type metrics struct {
	reg *prometheus.Registry

	mu       sync.Mutex
	progress map[watcher.Target][2]int    // pages done, total of the scan in progress
	oldest   map[watcher.Target]time.Time // oldest outbox entry per target (absent: empty)
	codes    map[string]struct{}          // error codes used as labels so far (see boundedCode)

	scanDuration   *prometheus.HistogramVec
	commitDuration *prometheus.HistogramVec
	scans          *prometheus.CounterVec
	pages          *prometheus.CounterVec
	apiRequests    *prometheus.CounterVec
	apiDuration    *prometheus.HistogramVec
	throttles      *prometheus.CounterVec
	retries        *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	instances      *prometheus.GaugeVec
	events         *prometheus.CounterVec
	operations     *prometheus.CounterVec
	held           *prometheus.GaugeVec
	lastComplete   *lastCompleteCollector
	scanProgress   *prometheus.GaugeVec
	cycleFailures  *prometheus.CounterVec
	outboxDepth    *prometheus.GaugeVec
	outboxOldest   *prometheus.GaugeVec
	relayDuration  *prometheus.HistogramVec
	relayPublished *prometheus.CounterVec
	relayFailures  *prometheus.CounterVec
	enrich         *enrichMetrics
	hot            *hotMetrics
}

var (
	_ watcher.Observer = (*metrics)(nil)
	_ cvm.Observer     = (*metrics)(nil)
)

const ns = "cvmwatch"

func newMetrics(nc *nats.Conn) *metrics {
	tl := []string{"account", "region"}
	m := &metrics{
		reg:      prometheus.NewRegistry(),
		progress: map[watcher.Target][2]int{},
		oldest:   map[watcher.Target]time.Time{},
		codes:    map[string]struct{}{},
		scanDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "scan_duration_seconds",
			Help:    "Duration of a scan of one target (all pages), by completeness.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, append(tl, "complete")),
		commitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "commit_duration_seconds",
			Help: "Time from the end of a scan's listing to its durable commit: diff, lookup of disappearance " +
				"candidates, enrichment, the store commit and the in-memory snapshot's update.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, tl),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scans_total",
			Help: "Committed scans, by completeness."}, append(tl, "complete")),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scan_pages_total",
			Help: "Pages read successfully by scans, through DescribeInstancesStatus or DescribeInstances (poll.describe_share)."}, tl),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "api_requests_total",
			Help: "Tencent Cloud API requests, by action and result code (OK, a Tencent error code, or ClientError.*)."},
			[]string{"account", "action", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "api_request_duration_seconds",
			Help: "Latency of Tencent Cloud API requests.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)},
			[]string{"action"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "api_throttles_total",
			Help: "API requests answered RequestLimitExceeded*."}, []string{"account", "action"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scan_retries_total",
			Help: "API requests of scans that were retries."}, tl),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scan_rejected_items_total",
			Help: "Listing items rejected as malformed or hostile."}, tl),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "instances",
			Help: "Live instances per state after the latest commit."}, append(tl, "state")),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_total",
			Help: "Events committed to the outbox, by transition."}, append(tl, "from", "to")),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "operation_events_total",
			Help: "Operation events committed to the outbox (an operation that left no visible state change), " +
				"by where it was seen: scan or refresh."}, append(tl, "source")),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "held_disappearances",
			Help: "Instances missing in a mass disappearance, held back until it persists."}, tl),
		lastComplete: &lastCompleteCollector{desc: prometheus.NewDesc(ns+"_last_complete_scan_timestamp_seconds",
			"Start of the latest complete scan of a target, from the stored snapshot after a restart.", tl, nil)},
		scanProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "scan_progress_ratio",
			Help: "Pages done / pages known of the scan in progress."}, tl),
		cycleFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cycle_failures_total",
			Help: "Scan cycles that committed nothing (auth failure, total API failure, commit failure)."}, tl),
		outboxDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "outbox_depth",
			Help: "Events committed and not yet acknowledged by NATS."}, tl),
		outboxOldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "outbox_oldest_timestamp_seconds",
			Help: "observedAt of the oldest event in the outbox (unix seconds; 0 when empty)."}, tl),
		relayDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "relay_publish_duration_seconds",
			Help:    "Duration of one relay publish of a batch, until its acknowledgements.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, tl),
		relayPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "relay_published_total",
			Help: "Events published and acknowledged."}, tl),
		relayFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "relay_failures_total",
			Help: "Relay attempts that did not publish the whole batch."}, tl),
	}
	m.reg.MustRegister(m.scanDuration, m.commitDuration, m.scans, m.pages, m.apiRequests, m.apiDuration, m.throttles, m.retries,
		m.rejected, m.instances, m.events, m.operations, m.held, m.lastComplete, m.scanProgress, m.cycleFailures, m.outboxDepth,
		m.outboxOldest, m.relayDuration, m.relayPublished, m.relayFailures)
	m.enrich = newEnrichMetrics(m.reg)
	m.hot = newHotMetrics(m.reg)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "outbox_oldest_age_seconds",
		Help: "Age of the oldest event in any outbox (0 when all are empty)."}, m.oldestAge))
	registerProcessMetrics(m.reg, nc)
	return m
}

// registerProcessMetrics registers what every cvmwatch process exports:
// the Go and process collectors, build_info, and nats_connected when nc is
// not nil.
func registerProcessMetrics(reg prometheus.Registerer, nc *nats.Conn) {
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the version is a label.", ConstLabels: prometheus.Labels{"version": version}})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	if nc != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "nats_connected",
			Help: "1 while the NATS connection is up."}, func() float64 {
			if nc.IsConnected() {
				return 1
			}
			return 0
		}))
	}
}

// oldestAge is the age of the oldest outbox entry across targets.
func (m *metrics) oldestAge() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var oldest time.Time
	for _, t := range m.oldest {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest).Seconds()
}

func (m *metrics) ScanCommitted(t watcher.Target, scan watcher.Scan, c watcher.Commit, byState map[watcher.State]int, held int) {
	complete := boolLabel(scan.Complete)
	m.scanDuration.WithLabelValues(t.Account, t.Region, complete).Observe(scan.Stats.Duration.Seconds())
	// The loop calls ScanCommitted right after the commit; the scanner's
	// Started and Duration are wall-clock times.
	m.commitDuration.WithLabelValues(t.Account, t.Region).Observe(time.Since(scan.Stats.Started.Add(scan.Stats.Duration)).Seconds())
	m.scans.WithLabelValues(t.Account, t.Region, complete).Inc()
	m.pages.WithLabelValues(t.Account, t.Region).Add(float64(scan.Stats.Pages))
	m.retries.WithLabelValues(t.Account, t.Region).Add(float64(scan.Stats.Retries))
	m.rejected.WithLabelValues(t.Account, t.Region).Add(float64(scan.Stats.Rejected))
	m.countEvents(t, c.Events, "scan")
	m.instances.DeletePartialMatch(prometheus.Labels{"account": t.Account, "region": t.Region})
	for st, n := range byState {
		m.instances.WithLabelValues(t.Account, t.Region, string(st)).Set(float64(n))
	}
	m.held.WithLabelValues(t.Account, t.Region).Set(float64(held))
}

// countEvents counts committed events: transitions by from and to,
// operation events apart (their from and to are the same state).
func (m *metrics) countEvents(t watcher.Target, events []watcher.Event, source string) {
	for _, e := range events {
		if e.IsOperation() {
			m.operations.WithLabelValues(t.Account, t.Region, source).Inc()
			continue
		}
		m.events.WithLabelValues(t.Account, t.Region, string(e.From), string(e.To)).Inc()
	}
}

var _ watcher.RefreshObserver = (*metrics)(nil)

// RefreshCommitted implements watcher.RefreshObserver.
func (m *metrics) RefreshCommitted(t watcher.Target, c watcher.Commit) {
	m.countEvents(t, c.Events, "refresh")
}

func (m *metrics) CycleFailed(t watcher.Target, err error) {
	m.cycleFailures.WithLabelValues(t.Account, t.Region).Inc()
}

func (m *metrics) Relayed(t watcher.Target, published int, took time.Duration, err error) {
	m.relayDuration.WithLabelValues(t.Account, t.Region).Observe(took.Seconds())
	m.relayPublished.WithLabelValues(t.Account, t.Region).Add(float64(published))
	if err != nil {
		m.relayFailures.WithLabelValues(t.Account, t.Region).Inc()
	}
}

func (m *metrics) OutboxState(t watcher.Target, depth int, oldest time.Time) {
	m.outboxDepth.WithLabelValues(t.Account, t.Region).Set(float64(depth))
	ts := 0.0
	m.mu.Lock()
	if oldest.IsZero() {
		delete(m.oldest, t)
	} else {
		ts = float64(oldest.UnixMilli()) / 1000
		m.oldest[t] = oldest
	}
	m.mu.Unlock()
	m.outboxOldest.WithLabelValues(t.Account, t.Region).Set(ts)
}

func (m *metrics) Request(account, action, code string, took time.Duration) {
	m.apiRequests.WithLabelValues(account, action, m.boundedCode(code)).Inc()
	m.apiDuration.WithLabelValues(action).Observe(took.Seconds())
	if cvm.Family(code) == cvm.FamilyThrottle {
		m.throttles.WithLabelValues(account, action).Inc()
	}
}

// maxCodes bounds the distinct error codes used as labels. Tencent's codes
// for these actions are a few dozen; a server inventing well-formed codes
// would otherwise add a series for each.
const maxCodes = 100

// codeOverflow labels every code beyond the first maxCodes.
const codeOverflow = "ClientError.TooManyCodes"

// boundedCode returns code while fewer than maxCodes distinct codes have
// been seen; after that a new code becomes its family's name (cvm.Family:
// throttling, auth and server errors, which alerts match, so they still
// fire however many codes came before), or codeOverflow.
func (m *metrics) boundedCode(code string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.codes[code]; ok {
		return code
	}
	if len(m.codes) < maxCodes {
		m.codes[code] = struct{}{}
		return code
	}
	if f := cvm.Family(code); f != "" {
		return f
	}
	return codeOverflow
}

func (m *metrics) Progress(t watcher.Target, done, total int) {
	if total > 0 {
		m.scanProgress.WithLabelValues(t.Account, t.Region).Set(float64(done) / float64(total))
	}
	m.mu.Lock()
	m.progress[t] = [2]int{done, total}
	m.mu.Unlock()
}

// scanProgressOf returns the pages done and known of a target's latest scan.
func (m *metrics) scanProgressOf(t watcher.Target) (done, total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.progress[t]
	return p[0], p[1]
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// watchStatus makes the metrics read each target's last complete scan from
// status (Watcher.Status) at every scrape.
func (m *metrics) watchStatus(status func() []watcher.TargetStatus) {
	m.lastComplete.mu.Lock()
	defer m.lastComplete.mu.Unlock()
	m.lastComplete.status = status
}

// lastCompleteCollector exports the last complete scan time of every target
// from the watcher's status, which the loop seeds from the stored snapshot.
// A gauge set only when a scan completes would be missing after a restart
// until one does, and a target whose scans keep failing would then never
// look stale to an alert.
type lastCompleteCollector struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	status func() []watcher.TargetStatus
}

func (c *lastCompleteCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lastCompleteCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	status := c.status
	c.mu.Unlock()
	if status == nil {
		return
	}
	for _, s := range status() {
		if s.LastComplete.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue,
			float64(s.LastComplete.UnixMilli())/1000, s.Target.Account, s.Target.Region)
	}
}

// watchLeases exports how many targets this replica holds (ha).
func (m *metrics) watchLeases(held func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "ha_leases_held",
		Help: "Targets whose lease this replica holds and watches (ha)."}, held))
}
