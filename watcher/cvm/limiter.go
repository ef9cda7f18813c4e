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
//
// A Share of a Limiter (the hot set's lookups) spends the same quota at
// most at a fixed fraction of its current rate, so the Limiter's other
// users always keep the rest and the two together never exceed the quota.
type Limiter struct {
	mu      sync.Mutex
	lim     *rate.Limiter
	ceiling rate.Limit
	floor   rate.Limit
	step    rate.Limit
	// shares are the Limiter's shares and fraction the part of its rate
	// each may use; parent is the Limiter a share spends (nil if none).
	shares   []*Limiter
	fraction float64
	parent   *Limiter
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

// Share returns a Limiter that spends l's quota at most at fraction (in
// (0, 1]) of l's current rate: a request through it waits for its share's
// pace and then for l, so it also takes its turn among l's other requests.
// What a share's requests report (Throttled, Failed, Succeeded) moves l's
// rate, and with it the share's. Each call returns a new share.
func (l *Limiter) Share(fraction float64) *Limiter {
	if l.parent != nil {
		return l.parent.Share(fraction * l.fraction)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &Limiter{
		lim:      rate.NewLimiter(l.lim.Limit()*rate.Limit(fraction), 1),
		fraction: fraction,
		parent:   l,
	}
	l.shares = append(l.shares, s)
	return s
}

// Wait blocks until a request may be sent or ctx is done.
func (l *Limiter) Wait(ctx context.Context) error {
	if err := l.lim.Wait(ctx); err != nil || l.parent == nil {
		return err
	}
	return l.parent.Wait(ctx)
}

// setLimit sets l's rate and its shares'; l.mu is held.
func (l *Limiter) setLimit(r rate.Limit) {
	l.lim.SetLimit(r)
	for _, s := range l.shares {
		s.lim.SetLimit(r * rate.Limit(s.fraction))
	}
}

// Throttled halves the current rate (down to a floor) after the API answered
// RequestLimitExceeded.
func (l *Limiter) Throttled() {
	if l.parent != nil {
		l.parent.Throttled()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLimit(max(l.lim.Limit()/2, l.floor))
}

// Failed takes a tenth off the current rate (down to the floor) after a
// retryable server or network error. Errors of the request itself (auth,
// rejected) and cancellations say nothing about the API's health: do not
// report them.
func (l *Limiter) Failed() {
	if l.parent != nil {
		l.parent.Failed()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLimit(max(l.lim.Limit()*9/10, l.floor))
}

// Succeeded moves the current rate one step back towards the ceiling.
func (l *Limiter) Succeeded() {
	if l.parent != nil {
		l.parent.Succeeded()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur := l.lim.Limit(); cur < l.ceiling {
		l.setLimit(min(cur+l.step, l.ceiling))
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
	shares    map[string]*Limiter
}

// NewLimiters returns a set of limiters of perSecond requests each.
func NewLimiters(perSecond float64, burst int) *Limiters {
	return &Limiters{perSecond: perSecond, burst: burst, m: map[string]*Limiter{}, shares: map[string]*Limiter{}}
}

// Share returns the one share (see Limiter.Share) of key's limiter, created
// on first use with fraction: every caller that passes key gets the same
// share, so the targets of one quota together stay within it.
func (ls *Limiters) Share(key string, fraction float64) *Limiter {
	l := ls.Get(key)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s, ok := ls.shares[key]
	if !ok {
		s = l.Share(fraction)
		ls.shares[key] = s
	}
	return s
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
