package main

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// hotMetrics describe the hot set: its size, its lookups and the events
// they found (which events_total counts too).
type hotMetrics struct {
	size    *prometheus.GaugeVec
	lookups *prometheus.CounterVec
	events  *prometheus.CounterVec
}

func newHotMetrics(reg prometheus.Registerer) *hotMetrics {
	tl := []string{"account", "region"}
	m := &hotMetrics{
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "hot_set_instances",
			Help: "Instances in a transitional state, looked up by ID every poll.hot_interval."}, tl),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "hot_lookups_total",
			Help: "Lookups of a batch of the hot set, by result: ok, failed (in part), or superseded " +
				"(set aside: a scan committed meanwhile)."}, append(tl, "result")),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "hot_events_total",
			Help: "Events committed from hot lookups and from scan pages committed early for the hot set " +
				"(also counted in events_total)."}, tl),
	}
	reg.MustRegister(m.size, m.lookups, m.events)
	return m
}

// HotLookedUp implements watcher.Observer.
func (m *metrics) HotLookedUp(t watcher.Target, inMotion, asked int, c watcher.Commit, err error) {
	h := m.hot
	h.size.WithLabelValues(t.Account, t.Region).Set(float64(inMotion))
	h.events.WithLabelValues(t.Account, t.Region).Add(float64(len(c.Events)))
	m.countEvents(t, c.Events, "scan")
	if asked == 0 { // an empty round, or an early commit of a scan's pages
		return
	}
	result := "ok"
	switch {
	case errors.Is(err, watcher.ErrHotSuperseded):
		result = "superseded"
	case err != nil:
		result = "failed"
	}
	h.lookups.WithLabelValues(t.Account, t.Region, result).Inc()
}
