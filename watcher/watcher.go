package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Defaults for Config.
const (
	DefaultInterval      = 30 * time.Second
	DefaultRelayWindow   = 16384
	DefaultShutdownDrain = 5 * time.Second
)

// Config wires a Watcher. Store and Publisher are required.
type Config struct {
	Store     Store
	Publisher Publisher
	Policy    Policy
	// Interval is the time between the starts of two scans of a target.
	Interval time.Duration
	// RelayWindow is the most events handed to Publisher.Publish at once.
	RelayWindow int
	// RelayMaxBackoff caps the wait between failed relay attempts.
	RelayMaxBackoff time.Duration
	// ShutdownDrain bounds how long Run keeps relaying after ctx is done.
	ShutdownDrain time.Duration
	Logger        *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Observer is told about scans, commits and relays; default: nobody.
	Observer Observer
	// Jitter delays each target's first scan by a random fraction of
	// Interval (0 to Jitter*Interval) so targets do not fire together.
	Jitter float64
	// MaxConcurrentScans caps the scans running at once across targets;
	// 0 means no cap.
	MaxConcurrentScans int
	// EnrichTimeout bounds the enrichment of one cycle's events, retries
	// included (default DefaultEnrichTimeout); EnrichRefresh is the time
	// between two refreshes of every instance's enrichment (default
	// DefaultEnrichRefresh). Both apply to targets with an Enricher.
	EnrichTimeout time.Duration
	EnrichRefresh time.Duration
	// ActorWait, ActorHorizon and ActorPoll apply to targets with an
	// Attributor (see attribution): how long a commit waits for actors,
	// how long a follow-up may still come, and how often pending
	// attributions are looked up (defaults DefaultActorWait,
	// DefaultActorHorizon, DefaultActorPoll).
	ActorWait    time.Duration
	ActorHorizon time.Duration
	ActorPoll    time.Duration
	// HotInterval is the time between two lookups of a target's hot set
	// (default DefaultHotInterval); it applies to targets with a
	// TargetSource.Hot.
	HotInterval time.Duration
	// Crash, if set, is called at each named crash point (the Crash*
	// constants). Tests set it to kill the process there, to prove that a
	// crash at any step loses nothing. Production leaves it nil.
	Crash func(point string)
}

// Crash points: the steps between which a crash must lose nothing.
const (
	CrashAfterScan    = "after-scan"    // scanned and diffed, nothing committed
	CrashAfterCommit  = "after-commit"  // committed, nothing published
	CrashAfterPublish = "after-publish" // published, outbox not yet acknowledged
	CrashMidAck       = "mid-ack"       // part of a published batch acknowledged
)

func (w *Watcher) crash(point string) {
	if w.cfg.Crash != nil {
		w.cfg.Crash(point)
	}
}

// TargetSource pairs a target with the source that lists it.
type TargetSource struct {
	Target Target
	Source Source
	// Interval overrides Config.Interval for this target when positive.
	Interval time.Duration
	// Enricher, if not nil, enriches the target's events and is refreshed
	// every Config.EnrichRefresh.
	Enricher Enricher
	// Attributor, if not nil (and Enricher not nil), finds the actor of
	// every new operation the events carry.
	Attributor Attributor
	// Hot, if not nil, looks up the target's instances in a transitional
	// state every Config.HotInterval (the hot set, see hotRound); give it
	// its own share of the quota so the scan is never starved.
	Hot Lookuper
}

// Watcher runs, per target, the loop scan -> diff -> confirm -> commit, and a
// relay that publishes the target's outbox in order. Targets are independent:
// one target's errors never stall another.
type Watcher struct {
	cfg Config
	log *slog.Logger
	// scanSlots bounds concurrent scans (nil: no bound).
	scanSlots chan struct{}

	mu      sync.Mutex // guards targets and running
	targets []*target
	running *runState // set while Run runs

	relayMu sync.Mutex
	relays  map[Target]*relayState // what RelayOnce carries between calls
}

// runState is what AddTarget needs to start a target while Run runs.
type runState struct {
	scanCtx, relayCtx context.Context
	loops, relays     *sync.WaitGroup
}

// target is the per-target state.
type target struct {
	Target
	source     Source
	enricher   Enricher
	attributor Attributor
	interval   time.Duration
	hot        Lookuper
	log        *slog.Logger
	// stop ends the target's loops and relay (set by start, under w.mu);
	// done counts them.
	stop context.CancelFunc
	done sync.WaitGroup

	// commitMu orders the diffs and commits of the scan loop and the hot
	// loop: each holds it from its diff to the snapshot's update. It
	// guards snap, scanCommits and hotSeen.
	commitMu sync.Mutex
	snap     *Snapshot
	// scanCommits counts the scans committed; hotSeen is when the latest
	// hot lookup that found an instance returned (see hotRound).
	scanCommits uint64
	hotSeen     map[string]time.Time
	// feed carries the scan's pages to the hot loop (see pageFeed).
	feed pageFeed
	// wake nudges the relay after a commit (capacity 1: one pending nudge is
	// enough).
	wake chan struct{}
	// scanSummary guards one heartbeat publish in flight.
	summaryBusy sync.Mutex

	// enrichMu orders the enrichment writes of the loop (fetch to commit)
	// and of the refresh (per page).
	enrichMu sync.Mutex

	mu     sync.Mutex // guards status and enrichAuth
	status TargetStatus
	// enrichAuth is set while EnrichError is an auth error (said once);
	// actorAuth likewise for ActorError.
	enrichAuth, actorAuth bool
}

// New returns a Watcher for targets. Two targets must not be equal.
func New(cfg Config, targets []TargetSource) (*Watcher, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("watcher: Store and Publisher are required")
	}
	if cfg.Policy == (Policy{}) {
		cfg.Policy = DefaultPolicy()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RelayWindow <= 0 {
		cfg.RelayWindow = DefaultRelayWindow
	}
	if cfg.RelayMaxBackoff <= 0 {
		cfg.RelayMaxBackoff = 30 * time.Second
	}
	if cfg.ShutdownDrain <= 0 {
		cfg.ShutdownDrain = DefaultShutdownDrain
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EnrichTimeout <= 0 {
		cfg.EnrichTimeout = DefaultEnrichTimeout
	}
	if cfg.EnrichRefresh <= 0 {
		cfg.EnrichRefresh = DefaultEnrichRefresh
	}
	cfg.ActorWait = cmp.Or(max(cfg.ActorWait, 0), DefaultActorWait)
	cfg.ActorHorizon = cmp.Or(max(cfg.ActorHorizon, 0), DefaultActorHorizon)
	cfg.ActorPoll = cmp.Or(max(cfg.ActorPoll, 0), DefaultActorPoll)
	if cfg.HotInterval <= 0 {
		cfg.HotInterval = DefaultHotInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger}
	if cfg.MaxConcurrentScans > 0 {
		w.scanSlots = make(chan struct{}, cfg.MaxConcurrentScans)
	}
	for _, ts := range targets {
		if err := w.AddTarget(ts); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Run scans every target each Interval and relays its outbox until ctx is
// done; then it stops scanning (an in-flight scan is abandoned, never half
// committed), relays for at most ShutdownDrain, and returns. It returns nil
// on a clean stop.
func (w *Watcher) Run(ctx context.Context) error {
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	var loops, relays sync.WaitGroup
	w.mu.Lock()
	if w.running != nil {
		w.mu.Unlock()
		return errors.New("watcher: Run called twice")
	}
	w.running = &runState{scanCtx: ctx, relayCtx: relayCtx, loops: &loops, relays: &relays}
	for _, t := range w.targets {
		w.start(t)
	}
	w.mu.Unlock()
	// Targets come and go (AddTarget, RemoveTarget) until ctx is done;
	// AddTarget starts none once it is (it checks under w.mu).
	<-ctx.Done()
	w.mu.Lock()
	w.mu.Unlock() // (a start under way has finished)
	loops.Wait()
	// Scanning has stopped: give the relays a bounded time to drain.
	timer := time.AfterFunc(w.cfg.ShutdownDrain, stopRelay)
	defer timer.Stop()
	relays.Wait()
	return nil
}

// AddTarget adds a target, also while Run runs (it then starts scanning it
// at once): how regions that appear are picked up without a restart. A target
// already present is an error.
func (w *Watcher) AddTarget(ts TargetSource) error {
	if err := ValidateToken(ts.Target.Account); err != nil {
		return fmt.Errorf("watcher: account %s: %w", Quote(ts.Target.Account), err)
	}
	if err := ValidateToken(ts.Target.Region); err != nil {
		return fmt.Errorf("watcher: region %s: %w", Quote(ts.Target.Region), err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.targets {
		if t.Target == ts.Target {
			return fmt.Errorf("watcher: target %s configured twice", ts.Target)
		}
	}
	interval := ts.Interval
	if interval <= 0 {
		interval = w.cfg.Interval
	}
	t := &target{
		Target:     ts.Target,
		source:     ts.Source,
		enricher:   ts.Enricher,
		attributor: ts.Attributor,
		hot:        ts.Hot,
		hotSeen:    map[string]time.Time{},
		interval:   interval,
		log:        w.cfg.Logger.With("account", ts.Target.Account, "region", ts.Target.Region),
		wake:       make(chan struct{}, 1),
		status:     TargetStatus{Target: ts.Target, Interval: interval},
	}
	w.targets = append(w.targets, t)
	if w.running != nil && w.running.scanCtx.Err() == nil {
		w.start(t)
	}
	return nil
}

// start runs a target's loop and relay, under contexts of the target's
// own that RemoveTarget cancels; w.mu is held.
func (w *Watcher) start(t *target) {
	r := w.running
	scanCtx, stopScan := context.WithCancel(r.scanCtx)
	relayCtx, stopRelay := context.WithCancel(r.relayCtx)
	t.stop = func() { stopScan(); stopRelay() }
	spawn := func(wg *sync.WaitGroup, fn func()) {
		wg.Add(1)
		t.done.Add(1)
		go func() {
			defer wg.Done()
			defer t.done.Done()
			fn()
		}()
	}
	spawn(r.loops, func() { w.scanLoop(scanCtx, t) })
	spawn(r.relays, func() { w.relayLoop(relayCtx, scanCtx, t) })
	if t.enricher != nil {
		spawn(r.loops, func() { w.refreshLoop(scanCtx, t) })
	}
	if t.attributor != nil {
		spawn(r.loops, func() { w.attributionLoop(scanCtx, t) })
	}
	if t.hot != nil {
		spawn(r.loops, func() { w.hotLoop(scanCtx, t) })
	}
}

// RemoveTarget stops watching tg: it cancels the target's scan, hot,
// enrichment and attribution loops and its relay at once (an in-flight
// scan is abandoned, never half committed; the relay does not drain: what
// it has not published stays in the outbox, for whoever watches the target
// next) and returns once they have all returned. It reports whether tg was
// watched. A replica that lost a target's lease calls it; AddTarget may add
// the target again later, which loads its snapshot from the store afresh.
func (w *Watcher) RemoveTarget(tg Target) bool {
	w.mu.Lock()
	i := slices.IndexFunc(w.targets, func(t *target) bool { return t.Target == tg })
	if i < 0 {
		w.mu.Unlock()
		return false
	}
	t := w.targets[i]
	w.targets = slices.Delete(w.targets, i, i+1)
	stop := t.stop
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	t.done.Wait()
	return true
}

// list returns the targets at this moment.
func (w *Watcher) list() []*target {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.targets)
}

// Targets returns the targets being watched, in the order they were added.
func (w *Watcher) Targets() []Target {
	var out []Target
	for _, t := range w.list() {
		out = append(out, t.Target)
	}
	return out
}

func (w *Watcher) scanLoop(ctx context.Context, t *target) {
	// The stored status is known before the first scan's jitter and slot;
	// a failure here is retried, and reported, by the first cycle.
	_ = w.loadSnapshot(ctx, t)
	if w.cfg.Jitter > 0 {
		delay := time.Duration(rand.Float64() * w.cfg.Jitter * float64(t.interval))
		if Sleep(ctx, delay) != nil {
			return
		}
	}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		if !w.acquireScanSlot(ctx) {
			return
		}
		_, err := w.cycle(ctx, t)
		w.releaseScanSlot()
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrIncomplete) {
			t.log.Error("scan cycle", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *Watcher) acquireScanSlot(ctx context.Context) bool {
	if w.scanSlots == nil {
		return ctx.Err() == nil
	}
	select {
	case w.scanSlots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *Watcher) releaseScanSlot() {
	if w.scanSlots != nil {
		<-w.scanSlots
	}
}

// Status returns what the loop knows about every target, in configuration
// order. Safe to call while Run runs.
func (w *Watcher) Status() []TargetStatus {
	targets := w.list()
	out := make([]TargetStatus, 0, len(targets))
	for _, t := range targets {
		t.mu.Lock()
		s := t.status
		s.ByState = maps.Clone(s.ByState)
		t.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// Interval is the configured time between scans of a target.
func (w *Watcher) Interval() time.Duration { return w.cfg.Interval }

// ScanOnce runs one cycle for target synchronously and returns the commit
// it made. It must not run concurrently with Run or another ScanOnce of the
// same target. Tests and one-shot tools use it.
func (w *Watcher) ScanOnce(ctx context.Context, tg Target) (Commit, error) {
	if t := w.find(tg); t != nil {
		return w.cycle(ctx, t)
	}
	return Commit{}, fmt.Errorf("watcher: unknown target %s", tg)
}

// find returns the target tg, nil if it is not watched.
func (w *Watcher) find(tg Target) *target {
	for _, t := range w.list() {
		if t.Target == tg {
			return t
		}
	}
	return nil
}

// Snapshot returns the in-memory snapshot of a target, nil before its first
// cycle. Callers must not use it while the target's loop runs.
func (w *Watcher) Snapshot(tg Target) *Snapshot {
	for _, t := range w.list() {
		if t.Target == tg {
			return t.snap
		}
	}
	return nil
}
