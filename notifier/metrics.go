package notifier

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the notifier's Prometheus metrics, labelled by sink name
// (never by URL: a webhook URL holds its secret).
type Metrics struct {
	MessagesSent    *prometheus.CounterVec
	EventsSent      *prometheus.CounterVec
	MessagesDropped *prometheus.CounterVec
	EventsDropped   *prometheus.CounterVec
	Throttled       *prometheus.CounterVec
	Retried         *prometheus.CounterVec
	Summaries       *prometheus.CounterVec
	// Lag is the consumer's count of events not yet delivered to it.
	Lag prometheus.Gauge
	// Pending is the events read but not yet acknowledged.
	Pending prometheus.Gauge
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cvmwatch_notify_" + name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		MessagesSent:    counter("messages_sent_total", "Messages the platform accepted, per sink (a split message counts each part).", "sink"),
		EventsSent:      counter("events_sent_total", "Events covered by messages the platform accepted, per sink.", "sink"),
		MessagesDropped: counter("messages_dropped_total", "Messages given up (refused for good, or retried past give_up_after), per sink.", "sink"),
		EventsDropped:   counter("events_dropped_total", "Events not told to a sink, per sink and reason (given_up, route_drop).", "sink", "reason"),
		Throttled:       counter("throttled_total", "Answers that said too fast (429, a platform's throttle code), per sink.", "sink"),
		Retried:         counter("retries_total", "Posts retried, per sink.", "sink"),
		Summaries:       counter("stale_summaries_total", "Stale backlogs sent as one summary, per sink.", "sink"),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cvmwatch_notify_consumer_lag",
			Help: "Events in the stream not yet delivered to the notifier's consumer."}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cvmwatch_notify_events_pending",
			Help: "Events read and not yet acknowledged (grouping, sending)."}),
	}
	reg.MustRegister(m.Lag, m.Pending)
	return m
}

// newDiscardMetrics are metrics registered nowhere.
func newDiscardMetrics() *Metrics { return NewMetrics(prometheus.NewRegistry()) }
