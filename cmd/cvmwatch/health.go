package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// targetHealth is one target in the /readyz and /api/state bodies.
type targetHealth struct {
	Target          string         `json:"target"`
	Ready           bool           `json:"ready"`
	Reason          string         `json:"reason,omitempty"`
	Baselined       bool           `json:"baselined"`
	LastScan        *time.Time     `json:"lastScan,omitempty"`
	LastComplete    *time.Time     `json:"lastComplete,omitempty"`
	ByState         map[string]int `json:"byState,omitempty"`
	Held            int            `json:"heldDisappearances"`
	OutboxDepth     int            `json:"outboxDepth"`
	OutboxOldestAge float64        `json:"outboxOldestAgeSeconds"`
	LastError       string         `json:"lastError,omitempty"`
	// PagesDone and PagesTotal are the latest scan's progress.
	PagesDone  int `json:"pagesDone"`
	PagesTotal int `json:"pagesTotal"`
	// Owner is the replica that holds the target's lease and OwnerSince
	// since when it holds it (ha only).
	Owner      string     `json:"owner,omitempty"`
	OwnerSince *time.Time `json:"ownerSince,omitempty"`
	// Instances lists the target's records, when asked for.
	Instances []instanceView `json:"instances,omitempty"`
}

// instanceView is one record in /api/state?instances=1 and `cvmwatch state`.
type instanceView struct {
	InstanceID string    `json:"instanceId"`
	State      string    `json:"state"`
	Sequence   uint64    `json:"sequence"`
	Since      time.Time `json:"since"`
	Missing    int       `json:"missing,omitempty"`
	// Name and Tags come from the instance's stored enrichment, if any.
	Name string            `json:"name,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// judge says whether a target is ready: it completed a scan within three
// intervals, and its outbox is draining (its oldest event is younger than
// three intervals).
func judge(s watcher.TargetStatus, interval time.Duration, now time.Time) targetHealth {
	h := targetHealth{Target: s.Target.String(), Baselined: s.Baselined, Held: s.Held,
		OutboxDepth: s.OutboxDepth, LastError: s.LastError, ByState: map[string]int{}}
	for st, n := range s.ByState {
		h.ByState[string(st)] = n
	}
	if !s.LastScan.IsZero() {
		h.LastScan = &s.LastScan
	}
	if !s.LastComplete.IsZero() {
		h.LastComplete = &s.LastComplete
	}
	if !s.OutboxOldest.IsZero() {
		h.OutboxOldestAge = now.Sub(s.OutboxOldest).Seconds()
	}
	limit := 3 * interval
	switch {
	case s.LastComplete.IsZero():
		h.Reason = "no complete scan yet"
	case now.Sub(s.LastComplete) > limit:
		h.Reason = fmt.Sprintf("last complete scan %s ago, more than 3 intervals", now.Sub(s.LastComplete).Round(time.Second))
	case !s.OutboxOldest.IsZero() && now.Sub(s.OutboxOldest) > limit:
		h.Reason = fmt.Sprintf("outbox not draining: %d events, oldest %s old", s.OutboxDepth, now.Sub(s.OutboxOldest).Round(time.Second))
	default:
		h.Ready = true
	}
	// Enrichment that does not work (a missing permission, timeouts) is
	// said here but does not make the target unready: events still flow.
	for _, why := range []string{s.EnrichError, s.ActorError} {
		if why == "" {
			continue
		}
		if h.Reason != "" {
			h.Reason += "; "
		}
		h.Reason += why
	}
	return h
}

// newHTTPHandler serves /metrics, /healthz, /readyz and /api/state
// (?target=account/region narrows it, &instances=1 adds the records, read
// from st; streams, if not nil, lists the NATS streams as set up).
func newHTTPHandler(w *watcher.Watcher, m *metrics, st watcher.Store, now func() time.Time, streams func() []publisher.StreamStatus) http.Handler {
	mux := newBaseMux(m.reg)
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		ready, targets := true, []targetHealth{}
		for _, s := range w.Status() {
			h := judge(s, s.Interval, now())
			ready = ready && h.Ready
			targets = append(targets, h)
		}
		status, code := "ready", http.StatusOK
		if !ready {
			status, code = "not ready", http.StatusServiceUnavailable
		}
		writeJSON(rw, code, map[string]any{"status": status, "targets": targets})
	})
	mux.HandleFunc("GET /api/state", func(rw http.ResponseWriter, r *http.Request) {
		only := r.URL.Query().Get("target")
		targets := []targetHealth{}
		for _, s := range w.Status() {
			if only != "" && s.Target.String() != only {
				continue
			}
			h := judge(s, s.Interval, now())
			h.PagesDone, h.PagesTotal = m.scanProgressOf(s.Target)
			if r.URL.Query().Get("instances") != "" {
				views, err := loadInstances(r.Context(), st, s.Target)
				if err != nil {
					writeJSON(rw, http.StatusInternalServerError, map[string]any{"error": err.Error()})
					return
				}
				h.Instances = views
			}
			targets = append(targets, h)
		}
		body := map[string]any{"targets": targets}
		if streams != nil {
			body["streams"] = streams()
		}
		writeJSON(rw, http.StatusOK, body)
	})
	return mux
}

// newBaseMux serves what every long-running cvmwatch process serves:
// /metrics from reg and /healthz (alive while the process answers).
func newBaseMux(reg prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]any{"status": "alive", "version": version})
	})
	return mux
}

// serveHTTP serves handler on ln in the background. stop shuts the server
// down (requests in flight get 2 s) and returns the error that ended
// serving, if any other than the shutdown.
func serveHTTP(ln net.Listener, handler http.Handler) (stop func() error) {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	}
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

// loadInstances reads a target's live records from the store.
func loadInstances(ctx context.Context, st watcher.Store, t watcher.Target) ([]instanceView, error) {
	var out []instanceView
	_, err := st.Load(ctx, t, func(r watcher.Record) error {
		if r.State != watcher.Absent {
			out = append(out, instanceView{InstanceID: r.InstanceID, State: string(r.State), Sequence: r.Sequence, Since: r.Since, Missing: r.Missing})
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	for i, v := range out {
		ids[i] = v.InstanceID
	}
	enr, err := st.Enrichments(ctx, t, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if e, ok := enr[out[i].InstanceID]; ok {
			out[i].Name = e.Instance.Name
			if len(e.Instance.Tags) > 0 {
				out[i].Tags = make(map[string]string, len(e.Instance.Tags))
				for _, tag := range e.Instance.Tags {
					out[i].Tags[tag.Key] = tag.Value
				}
			}
		}
	}
	return out, nil
}
