package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// enrichMetrics count the enrichment of events and the background refresh
// (labels: the target and the kind, watcher.EnrichEvents or
// watcher.EnrichRefresh).
type enrichMetrics struct {
	instances *prometheus.CounterVec
	failures  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

func newEnrichMetrics(reg prometheus.Registerer) *enrichMetrics {
	l := []string{"account", "region", "kind"}
	m := &enrichMetrics{
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "enrich_instances_total",
			Help: "Instances asked to DescribeInstances for enrichment, by result: described, or missing " +
				"(its event went out without data.instance)."}, append(l, "result")),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "enrich_failures_total",
			Help: "Enrichment attempts that were not complete (timeout, throttling, missing permission)."}, l),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "enrich_duration_seconds",
			Help:    "Time spent enriching one cycle's events, before the commit (bounded by enrich.timeout).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, []string{"account", "region"}),
	}
	reg.MustRegister(m.instances, m.failures, m.duration)
	return m
}

// Enriched implements watcher.Observer.
func (m *metrics) Enriched(t watcher.Target, kind string, asked, got int, took time.Duration, err error) {
	e := m.enrich
	e.instances.WithLabelValues(t.Account, t.Region, kind, "described").Add(float64(got))
	e.instances.WithLabelValues(t.Account, t.Region, kind, "missing").Add(float64(max(asked-got, 0)))
	if err != nil {
		e.failures.WithLabelValues(t.Account, t.Region, kind).Inc()
	}
	if kind == watcher.EnrichEvents {
		e.duration.WithLabelValues(t.Account, t.Region).Observe(took.Seconds())
	}
}
