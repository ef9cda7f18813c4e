package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/store/jsstore"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// haRunner shares the configured targets with the other replicas (ha
// section): a lease manager takes, renews and releases leases on them;
// each lease gained claims the target's epoch on the event stream and
// starts the target's loops (which load its snapshot from the journal
// store), each lease lost forgets the epoch, so the relay's publishes are
// refused at once, and stops the loops.
//
// The guarantees rest on JetStream, not on timing: a replica that lost a
// lease without knowing it (paused) has its journal writes refused
// (jsstore.ErrFenced) and its event publishes refused (publisher.FencedBatch on
// the epoch the successor claimed), so it can neither fork an instance's
// chain nor re-publish.
type haRunner struct {
	replica string
	prefix  string
	js      jetstream.JetStream // unfenced: claims epochs
	leases  *lease.Manager
	w       *watcher.Watcher
	log     *slog.Logger

	mu      sync.Mutex
	sources map[watcher.Target]watcher.TargetSource
	held    map[watcher.Target]heldTarget
}

// heldTarget is a target this replica watches: its lease and its epoch.
type heldTarget struct {
	lease.Lease
	epoch uint64
}

// newHARunner returns a runner over the configured targets; w gets the
// targets as their leases are gained.
func newHARunner(ctx context.Context, cfg *Config, js jetstream.JetStream, replicas int, log *slog.Logger) (*haRunner, error) {
	id, err := cfg.HA.replica()
	if err != nil {
		return nil, fmt.Errorf("ha.replica_id: %w", err)
	}
	m, err := lease.New(ctx, js, lease.Config{Replica: id, TTL: cfg.HA.LeaseTTL.D(), Replicas: replicas, Logger: log,
		Campaign: cfg.HA.LeaseTTL.D() / 3}) // one round: see lease.Config.Campaign
	if err != nil {
		return nil, err
	}
	return &haRunner{replica: id, prefix: cfg.NATS.SubjectPrefix, js: js, leases: m, log: log.With("replica", id),
		sources: map[watcher.Target]watcher.TargetSource{}, held: map[watcher.Target]heldTarget{}}, nil
}

// add makes ts one of the targets to share (from the next lease round).
func (h *haRunner) add(ts watcher.TargetSource) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sources[ts.Target]; ok {
		return fmt.Errorf("target %s configured twice", ts.Target)
	}
	h.sources[ts.Target] = ts
	targets := make([]watcher.Target, 0, len(h.sources))
	for t := range h.sources {
		targets = append(targets, t)
	}
	h.leases.SetTargets(targets)
	return nil
}

// fence is the publisher.Fence of this replica: a message of a target
// this replica holds carries the expected last sequence of the target's
// epoch subject; any other message is refused.
func (h *haRunner) fence(subject string) (string, uint64, bool) {
	rest, ok := strings.CutPrefix(subject, h.prefix+".")
	if !ok {
		return "", 0, false
	}
	tokens := strings.SplitN(rest, ".", 4) // kind, account, region, ...
	if len(tokens) < 3 {
		return "", 0, false
	}
	t := watcher.Target{Account: tokens[1], Region: tokens[2]}
	h.mu.Lock()
	ht, ok := h.held[t]
	h.mu.Unlock()
	if !ok || !h.leaseValid(t) { // lapsed by our clock: not even sent (ha_guard.go)
		return "", 0, false
	}
	return publisher.EpochSubject(h.prefix, t.Account, t.Region), ht.epoch, true
}

// Run takes part in the lease rounds and starts and stops targets until
// ctx is done; then the manager releases every lease (so successors need
// not wait for the TTL) and Run returns once every target is stopped.
func (h *haRunner) Run(ctx context.Context) {
	rounds := make(chan struct{})
	go func() {
		defer close(rounds)
		h.leases.Run(ctx)
	}()
	for {
		select {
		case c := <-h.leases.Changes():
			h.apply(ctx, c)
		case <-rounds:
			for {
				select {
				case c := <-h.leases.Changes():
					h.apply(ctx, c)
				default:
					return
				}
			}
		}
	}
}

// apply starts a target whose lease was gained, stops one whose lease was
// lost.
func (h *haRunner) apply(ctx context.Context, c lease.Change) {
	t := c.Target
	if !c.Gained {
		h.mu.Lock()
		_, ok := h.held[t]
		delete(h.held, t) // from now on its publishes are refused here
		h.mu.Unlock()
		if ok {
			h.w.RemoveTarget(t)
			h.log.Warn("target handed over: stopped", "target", t.String(), "reason", c.Reason, "token", c.Token)
		}
		return
	}
	h.mu.Lock()
	ts, ok := h.sources[t]
	h.mu.Unlock()
	if !ok || ctx.Err() != nil {
		return
	}
	epoch, err := h.claim(ctx, t, c.Token)
	if err != nil {
		// The lease stays ours and is renewed; the target is not watched
		// here. It is released once it is no longer valid.
		h.log.Error("target not started: its epoch could not be claimed", "target", t.String(), "err", err)
		return
	}
	h.mu.Lock()
	h.held[t] = heldTarget{Lease: c.Lease, epoch: epoch}
	h.mu.Unlock()
	if err := h.w.AddTarget(ts); err != nil {
		h.log.Error("target not started", "target", t.String(), "err", err)
		return
	}
	h.log.Info("target taken over: started", "target", t.String(), "token", c.Token, "epoch", epoch)
}

// claim claims t's epoch, retrying while the lease is still valid.
func (h *haRunner) claim(ctx context.Context, t watcher.Target, token uint64) (uint64, error) {
	subject := publisher.EpochSubject(h.prefix, t.Account, t.Region)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		seq, err := publisher.ClaimEpoch(cctx, h.js, subject, h.replica, token)
		cancel()
		if err == nil {
			return seq, nil
		}
		if _, ok := h.leases.Valid(t); !ok || ctx.Err() != nil || errors.Is(err, publisher.ErrStaleClaim) {
			return 0, err
		}
		if watcher.Sleep(ctx, watcher.Backoff(attempt, 100*time.Millisecond, time.Second)) != nil {
			return 0, ctx.Err()
		}
	}
}

// Held returns the targets this replica holds, with since when, sorted.
func (h *haRunner) Held() []lease.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]lease.Lease, 0, len(h.held))
	for _, ht := range h.held {
		out = append(out, ht.Lease)
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return strings.Compare(a.Target.String(), b.Target.String()) })
	return out
}

// scanSplit publishes events through events (fenced) and scan summaries
// through scans (unfenced: they go to the scans stream, which holds no
// epoch subject, and are best effort).
type scanSplit struct {
	watcher.Publisher
	scans watcher.Publisher
}

func (p scanSplit) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	return p.scans.PublishScan(ctx, s)
}

// haStartTimeout bounds the set-up of the streams, the journal store and
// the lease bucket at start-up: with ha they are needed before anything
// runs, so a cluster that does not answer is a start-up error.
const haStartTimeout = 30 * time.Second

// openHA wires the ha mode: the event stream with the epoch subjects, the
// journal store and the lease bucket with the event stream's replica
// count, the lease runner, and the publisher fenced by its epochs.
func (d *daemon) openHA(ctx context.Context) (watcher.Publisher, error) {
	n := d.cfg.NATS
	js, err := publisher.NewJetStreamContext(d.nc)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, haStartTimeout)
	defer cancel()
	sc := d.streamConfig()
	var events jetstream.Stream
	if err := haRetry(sctx, func(ctx context.Context) (err error) {
		events, err = publisher.EnsureStream(ctx, js, sc)
		return err
	}); err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	replicas := events.CachedInfo().Config.Replicas
	if err := haRetry(sctx, func(ctx context.Context) (err error) {
		d.ha, err = newHARunner(ctx, d.cfg, js, replicas, d.log)
		return err
	}); err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	var journal *jsstore.Store
	if err := haRetry(sctx, func(ctx context.Context) (err error) {
		journal, err = jsstore.Open(ctx, js, jsstore.Options{Replicas: replicas, Writer: d.ha.replica})
		return err
	}); err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	d.store = leaseGuard{Store: journal, valid: d.ha.leaseValid} // writes need a valid lease (ha_guard.go)
	jc := publisher.JetStreamConfig{Prefix: n.SubjectPrefix}
	// A target's events go as atomic batches fenced on its epoch, one batch
	// in flight: one commit round trip per up to 1,000 events. On a stream
	// that does not allow atomic publish (an operator's), one fenced event
	// at a time (docs/DECISIONS.md).
	atomic := events.CachedInfo().Config.AllowAtomicPublish
	if !atomic {
		d.log.Warn("ha: the event stream does not allow atomic batch publish (it is not cvmwatch's, or the server refused the change): "+
			"fenced events are published one at a time, one round trip each", "stream", events.CachedInfo().Config.Name)
	}
	batches, err := publisher.NewFencedBatch(js, d.ha.fence, publisher.FencedBatchConfig{
		Prefix: n.SubjectPrefix, Atomic: atomic, Logger: d.log})
	if err != nil {
		return nil, err
	}
	fenced := publisher.NewStreamReadyFor(js, sc, batches)
	d.streams = fenced.Streams
	scans, err := publisher.NewJetStream(js, jc)
	if err != nil {
		return nil, err
	}
	d.log.Info("ha: sharing the targets with the other replicas", "replica", d.ha.replica,
		"lease_ttl", d.cfg.HA.LeaseTTL.D(), "replicas", replicas)
	return scanSplit{Publisher: fenced, scans: scans}, nil
}

// wrapStatus adds the leases to handler's /readyz and /api/state: each
// target this replica watches gets its owner (this replica) and since
// when, and an "ha" entry says which replica answers and how many targets
// it holds. A replica that holds none is ready: it stands by.
func (h *haRunner) wrapStatus(handler http.Handler) http.Handler {
	return amendJSON(handler, []string{"/readyz", "/api/state"}, func(body map[string]any, code int) int {
		held := map[string]lease.Lease{}
		for _, l := range h.Held() {
			held[l.Target.String()] = l
		}
		if targets, ok := body["targets"].([]any); ok {
			for _, t := range targets {
				m, ok := t.(map[string]any)
				if !ok {
					continue
				}
				name, _ := m["target"].(string)
				if l, ok := held[name]; ok {
					m["owner"], m["ownerSince"] = h.replica, l.Since
				}
			}
		}
		body["ha"] = map[string]any{"replica": h.replica, "holds": len(held)}
		return code
	})
}
