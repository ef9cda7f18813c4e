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
	window         []time.Time // arrivals, oldest first; those before head are gone
	head           int
	peak           int
}

// arrive records one API request of action at now (real, monotonic time).
func (c *counters) arrive(action string, now time.Time) {
	switch action {
	case ActionDescribeInstancesStatus, ActionDescribeInstances, ActionAssumeRole, ActionLookUpEvents:
	default:
		action = "other"
	}
	c.requests[action]++
	for c.head < len(c.window) && now.Sub(c.window[c.head]) >= time.Second {
		c.head++
	}
	if c.head > 1024 && c.head > len(c.window)/2 { // compact, amortised O(1)
		c.window = append(c.window[:0], c.window[c.head:]...)
		c.head = 0
	}
	c.window = append(c.window, now)
	if n := len(c.window) - c.head; n > c.peak {
		c.peak = n
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
