package cvm

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// Limiter paces the requests of one (credential, API): at most the
// configured rate, lowered when the API struggles and restored step by step
// as requests succeed (additive increase, multiplicative decrease):
//
//   - a throttled request (RequestLimitExceeded*) halves the rate: we are
//     over the quota;
//   - any other retryable error (InternalError, ServiceUnavailable, a 5xx,
//     a timeout, an unusable answer) takes a tenth off: the API is unwell,
//     and a storm of such errors should slow every worker that shares the
//     quota, not only the one that backs off, while a stray error should
//     cost little: at most five successes win it back;
//   - each success adds 1/50 of the configured rate back, up to it.
//
// The rate never falls below a floor of 0.5 requests per second (or the
// configured rate, if lower). One Limiter is shared by every target that
// spends the same quota. Safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	lim     *rate.Limiter
	ceiling rate.Limit
	floor   rate.Limit
	step    rate.Limit
}

// NewLimiter returns a limiter of perSecond requests with the given burst
// (at least 1).
func NewLimiter(perSecond float64, burst int) *Limiter {
	ceiling := rate.Limit(perSecond)
	return &Limiter{
		lim:     rate.NewLimiter(ceiling, max(burst, 1)),
		ceiling: ceiling,
		floor:   min(ceiling, 0.5),
		step:    ceiling / 50,
	}
}

// Wait blocks until a request may be sent or ctx is done.
func (l *Limiter) Wait(ctx context.Context) error { return l.lim.Wait(ctx) }

// Throttled halves the current rate (down to a floor) after the API answered
// RequestLimitExceeded.
func (l *Limiter) Throttled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lim.SetLimit(max(l.lim.Limit()/2, l.floor))
}

// Failed takes a tenth off the current rate (down to the floor) after a
// retryable server or network error. Errors of the request itself (auth,
// rejected) and cancellations say nothing about the API's health: do not
// report them.
func (l *Limiter) Failed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lim.SetLimit(max(l.lim.Limit()*9/10, l.floor))
}

// Succeeded moves the current rate one step back towards the ceiling.
func (l *Limiter) Succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur := l.lim.Limit(); cur < l.ceiling {
		l.lim.SetLimit(min(cur+l.step, l.ceiling))
	}
}

// Rate is the current rate in requests per second.
func (l *Limiter) Rate() float64 { return float64(l.lim.Limit()) }

// Limiters hands out one Limiter per key, creating it on first use with the
// same rate and burst. Safe for concurrent use.
type Limiters struct {
	perSecond float64
	burst     int
	mu        sync.Mutex
	m         map[string]*Limiter
}

// NewLimiters returns a set of limiters of perSecond requests each.
func NewLimiters(perSecond float64, burst int) *Limiters {
	return &Limiters{perSecond: perSecond, burst: burst, m: map[string]*Limiter{}}
}

// Get returns the limiter for the quota that key names, e.g.
// "<account>/DescribeInstancesStatus".
func (ls *Limiters) Get(key string) *Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[key]
	if !ok {
		l = NewLimiter(ls.perSecond, ls.burst)
		ls.m[key] = l
	}
	return l
}
