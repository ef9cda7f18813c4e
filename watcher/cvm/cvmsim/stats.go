package cvmsim

import "time"

// Stats counts what the API saw since the server started.
type Stats struct {
	// Requests counts API requests per action, failed ones included. Actions
	// the server does not serve are counted under "other".
	Requests map[string]int64 `json:"requests"`
	// Throttled counts RequestLimitExceeded answers of the quota (not those
	// injected by faults).
	Throttled int64 `json:"throttled"`
	// PeakPerSecond is the largest number of API requests that arrived within
	// any one-second sliding window.
	PeakPerSecond int `json:"peakPerSecond"`
	// AuthFailures counts requests rejected by signature verification.
	AuthFailures int64 `json:"authFailures"`
	// FaultsInjected counts fault firings (one request can fire several).
	FaultsInjected int64 `json:"faultsInjected"`
}

// counters is the mutable side of Stats. Guarded by Server.mu.
type counters struct {
	requests       map[string]int64
	throttled      int64
	authFailures   int64
	faultsInjected int64
	window         []time.Time // arrivals within the last second, oldest first
	peak           int
}

// arrive records one API request of action at now (real, monotonic time).
func (c *counters) arrive(action string, now time.Time) {
	switch action {
	case ActionDescribeInstancesStatus, ActionDescribeInstances:
	default:
		action = "other"
	}
	c.requests[action]++
	cut := 0
	for cut < len(c.window) && now.Sub(c.window[cut]) >= time.Second {
		cut++
	}
	if cut > 0 {
		c.window = append(c.window[:0], c.window[cut:]...)
	}
	c.window = append(c.window, now)
	if len(c.window) > c.peak {
		c.peak = len(c.window)
	}
}

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := make(map[string]int64, len(s.stats.requests))
	for k, v := range s.stats.requests {
		req[k] = v
	}
	return Stats{
		Requests:       req,
		Throttled:      s.stats.throttled,
		PeakPerSecond:  s.stats.peak,
		AuthFailures:   s.stats.authFailures,
		FaultsInjected: s.stats.faultsInjected,
	}
}
