package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// DefaultMaxAge is how old a group's newest event may be before the group
// is sent as a one-line summary instead (see PipelineConfig.MaxAge).
const DefaultMaxAge = time.Hour

// mergeFactor bounds how many of a route's queued groups a backed-up sink
// merges into one message: up to this many times the route's group_max
// events.
const mergeFactor = 10

// PipelineConfig wires a Pipeline.
type PipelineConfig struct {
	Router *Router
	// Senders by sink name; every sink a route names must be here.
	Senders map[string]*Sender
	// Sent is the dedupe memory; nil: a MemSent.
	Sent SentStore
	// MaxAge: events observed longer ago than this when they are read (a
	// backlog after an outage) are told as one summary per route and sink,
	// not one message per group. 0: DefaultMaxAge.
	MaxAge  time.Duration
	Logger  *slog.Logger
	Metrics *Metrics
}

// Pipeline routes events, groups them per route, renders and sends each
// group to the route's sinks, and reports each event done once every
// message that includes it was accepted or given up.
type Pipeline struct {
	cfg PipelineConfig
	log *slog.Logger

	mu     sync.Mutex
	groups map[groupKey]*group
	// inflight holds the events submitted and not yet done, by ID.
	inflight map[string]*tracked
	sinks    map[string]*sinkQueue
	ctx      context.Context // Run's
	ready    chan struct{}
}

// groupKey is a route, and whether its group is of stale events.
type groupKey struct {
	route *Route
	stale bool
}

// group is the events of a route collected for one message.
type group struct {
	key    groupKey
	events []*tracked
	timer  *time.Timer
}

// tracked is an event waiting for the messages that include it.
type tracked struct {
	Event
	// need holds the SentKeys still to send (written by Submit only).
	need map[string]bool
	mu   sync.Mutex
	// remaining counts the messages still to send; done are the callbacks
	// of each delivery of the event (a redelivery while it is in flight
	// adds one).
	remaining int
	done      []func()
}

// finish counts one message (or one sink's decision) as done with t.
func (t *tracked) finish(p *Pipeline) {
	t.mu.Lock()
	t.remaining--
	last := t.remaining == 0
	t.mu.Unlock()
	if !last {
		return
	}
	p.mu.Lock()
	delete(p.inflight, t.ID)
	done := t.done
	t.done = nil
	p.mu.Unlock()
	for _, f := range done {
		f()
	}
}

// job is a group to send to one sink.
type job struct {
	key    groupKey
	events []*tracked
}

// NewPipeline checks cfg: every sink a route names must have a sender.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Router == nil {
		return nil, errors.New("notifier: no router")
	}
	if cfg.Sent == nil {
		cfg.Sent = &MemSent{}
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = newDiscardMetrics()
	}
	for _, rt := range cfg.Router.Routes() {
		for _, s := range rt.Sinks {
			if cfg.Senders[s] == nil {
				return nil, fmt.Errorf("route %s: no sink named %s", rt.Name, s)
			}
		}
	}
	p := &Pipeline{cfg: cfg, log: cfg.Logger, groups: map[groupKey]*group{}, inflight: map[string]*tracked{}, sinks: map[string]*sinkQueue{}}
	for name, s := range cfg.Senders {
		p.sinks[name] = &sinkQueue{sender: s, wake: make(chan struct{}, 1)}
	}
	return p, nil
}

// Run sends what the groups produce until ctx ends. Events not yet sent
// then are never reported done: they are read again after a restart.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, q := range p.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, q)
		}()
	}
	<-ctx.Done()
	p.mu.Lock()
	for _, g := range p.groups {
		g.timer.Stop()
	}
	p.mu.Unlock()
	wg.Wait()
	return nil
}

// Submit routes e; done is called once (from another goroutine, or before
// Submit returns when there is nothing to send) when every message that
// includes e was accepted or given up, and never if the pipeline stops
// first. now is the time of reading, against which MaxAge is judged.
func (p *Pipeline) Submit(ctx context.Context, e Event, now time.Time, done func()) error {
	p.mu.Lock()
	if t := p.inflight[e.ID]; t != nil {
		// Delivered again while in flight (its ack wait ran out): done
		// with the first delivery.
		t.done = append(t.done, done)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	routes, dropped := p.cfg.Router.Route(e)
	if dropped != "" {
		p.cfg.Metrics.EventsDropped.WithLabelValues("", "route_drop").Inc()
	}
	t := &tracked{Event: e, need: map[string]bool{}, done: []func(){done}}
	var dests []*Route
	for _, rt := range routes {
		need := false
		for _, sink := range rt.Sinks {
			key := SentKey(rt.Name, sink, e.ID)
			sent, err := p.cfg.Sent.Sent(ctx, key)
			if err != nil {
				return err
			}
			if !sent && !t.need[key] {
				need = true
				t.need[key] = true
				t.remaining++
			}
		}
		if need {
			dests = append(dests, rt)
		}
	}
	if t.remaining == 0 {
		done()
		return nil
	}
	p.mu.Lock()
	p.inflight[e.ID] = t
	p.mu.Unlock()
	stale := now.Sub(e.ObservedAt) > p.cfg.MaxAge
	for _, rt := range dests {
		p.add(groupKey{rt, stale}, t)
	}
	return nil
}

// add puts t in its route's group, opening the group (and its timer) if
// need be, and flushes the group when it is full.
func (p *Pipeline) add(k groupKey, t *tracked) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[k]
	if g == nil {
		g = &group{key: k}
		p.groups[k] = g
		g.timer = time.AfterFunc(k.route.GroupWait, func() { p.flushGroup(g) })
	} else if k.stale {
		// A stale backlog is one summary: wait until it stops growing.
		g.timer.Reset(k.route.GroupWait)
	}
	g.events = append(g.events, t)
	if !k.stale && len(g.events) >= k.route.GroupMax {
		g.timer.Stop()
		p.flushLocked(g)
	}
}

func (p *Pipeline) flushGroup(g *group) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked(g)
}

// flushLocked hands g to the sinks of its route; p.mu is held.
func (p *Pipeline) flushLocked(g *group) {
	if p.groups[g.key] != g {
		return // already flushed
	}
	delete(p.groups, g.key)
	for _, sink := range g.key.route.Sinks {
		var events []*tracked
		for _, t := range g.events {
			if t.need[SentKey(g.key.route.Name, sink, t.ID)] { // not told before
				events = append(events, t)
			}
		}
		if len(events) > 0 {
			p.sinks[sink].push(job{key: g.key, events: events})
		}
	}
}

// Flush sends every open group now (at shutdown of a dry run, in tests).
func (p *Pipeline) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.groups {
		g.timer.Stop()
		p.flushLocked(g)
	}
}

// sinkQueue is the jobs waiting for one sink, sent one at a time.
type sinkQueue struct {
	sender *Sender
	mu     sync.Mutex
	jobs   []job
	wake   chan struct{}
}

func (q *sinkQueue) push(j job) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the first job, merged with the queued jobs of the same route
// and staleness behind it (up to mergeFactor times group_max events): a
// sink that is behind sends fewer, fuller messages.
func (q *sinkQueue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) == 0 {
		return job{}, false
	}
	j := q.jobs[0]
	rest := q.jobs[:0]
	limit := j.key.route.GroupMax * mergeFactor
	for _, o := range q.jobs[1:] {
		if o.key == j.key && len(j.events)+len(o.events) <= limit {
			j.events = append(j.events, o.events...)
			continue
		}
		rest = append(rest, o)
	}
	q.jobs = rest
	return j, true
}

// work sends q's jobs until ctx ends.
func (p *Pipeline) work(ctx context.Context, q *sinkQueue) {
	for {
		j, ok := q.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		if err := p.send(ctx, q.sender, j); err != nil {
			return // ctx ended: the job's events stay unacknowledged
		}
	}
}

// send renders and sends one job, records its events as sent, and reports
// them done. It returns an error only when ctx ended first. A message the
// platform accepted is recorded even when ctx ends at that moment (see
// mark), so that the next run does not tell it again.
func (p *Pipeline) send(ctx context.Context, s *Sender, j job) error {
	events := make([]Event, len(j.events))
	for i, t := range j.events {
		events[i] = t.Event
	}
	lim := s.Platform().Limits()
	m, err := Render(j.key.route, s.Platform().Style(), lim.MaxBytes, events, j.key.stale)
	if err == nil {
		err = s.Send(ctx, m)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		p.log.Error("events not told: message given up", "route", j.key.route.Name, "sink", s.Name(), "events", len(events), "err", err)
		p.cfg.Metrics.EventsDropped.WithLabelValues(s.Name(), "given_up").Add(float64(len(events)))
	default:
		keys := make([]string, len(events))
		for i, e := range events {
			keys[i] = SentKey(j.key.route.Name, s.Name(), e.ID)
		}
		if err := p.mark(ctx, s.Name(), keys); err != nil {
			return err
		}
		p.cfg.Metrics.EventsSent.WithLabelValues(s.Name()).Add(float64(len(events)))
		if j.key.stale {
			p.cfg.Metrics.Summaries.WithLabelValues(s.Name()).Inc()
		}
	}
	for _, t := range j.events {
		t.finish(p)
	}
	return nil
}

// markGrace bounds the last try at recording an accepted message once the
// pipeline is stopping.
const markGrace = 5 * time.Second

// mark records keys as sent, retrying every second until it succeeds. Once
// ctx has ended it makes one last try of at most markGrace; if that fails
// too it returns ctx's error, and the events are told again after a
// restart.
func (p *Pipeline) mark(ctx context.Context, sink string, keys []string) error {
	for {
		if ctx.Err() != nil {
			gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markGrace)
			err := p.cfg.Sent.Mark(gctx, keys)
			cancel()
			if err != nil {
				p.log.Error("accepted message not recorded as sent; it will be told again after a restart", "sink", sink, "events", len(keys), "err", err)
				return ctx.Err()
			}
			return nil
		}
		err := p.cfg.Sent.Mark(ctx, keys)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil {
			p.log.Warn("cannot record events as sent; retrying", "sink", sink, "err", err)
			_ = watcher.Sleep(ctx, time.Second) // cut short by a stop, which tries once more
		}
	}
}
