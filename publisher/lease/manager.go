package lease

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Config configures a Manager.
type Config struct {
	// Replica is this replica's id: a safe subject token, unique among the
	// replicas. Required.
	Replica string
	// Bucket is the KV bucket; default CVMWATCH_LEASES.
	Bucket string
	// TTL is the lease length; default 15s. Every replica must use the
	// same (EnsureBucket refuses a bucket with another).
	TTL time.Duration
	// Margin is subtracted from TTL when judging whether a lease is still
	// valid; default TTL/5.
	Margin time.Duration
	// Replicas is the number of copies of a new bucket; default 1.
	Replicas int
	// Campaign is how long a new manager only registers before it takes
	// any target: long enough for the replicas started with it (after a
	// restart of all of them, or with the first one after an outage) to
	// register too, so the first one back does not take every target for
	// a round and hand most of them over again. Zero takes at once. The
	// daemon uses one round (TTL/3).
	Campaign time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives every lease taken, renewed late, lost and released;
	// nil discards.
	Logger *slog.Logger
}

// Lease is a target this replica holds.
type Lease struct {
	Target watcher.Target
	// Token is the KV revision of the write that took the lease: it grows
	// with every acquisition by any replica, so it orders owners (a
	// fencing token).
	Token uint64
	// Since is when this replica took it.
	Since time.Time
	// ValidUntil is when this replica stops counting it valid unless it is
	// renewed: TTL minus Margin after the last successful write was sent.
	ValidUntil time.Time

	revision uint64
}

// Change reports a lease gained or lost.
type Change struct {
	Lease
	Gained bool
	// Reason says why a lease was lost: "released" (assigned elsewhere),
	// "taken" (another replica holds it), "expired" (not renewed in time),
	// "stopped".
	Reason string
}

// Manager takes, renews and releases this replica's leases. Tick does one
// round; Run calls it every TTL/3 (with jitter). Owned, Valid and Changes
// may be called from any goroutine; Tick and Run from one at a time.
type Manager struct {
	kv      jetstream.KeyValue
	cfg     Config
	log     *slog.Logger
	changes chan Change

	mu      sync.Mutex
	targets []watcher.Target
	held    map[watcher.Target]*Lease
	// takeFrom is when the campaign ends (see Config.Campaign): set by
	// the first Tick.
	takeFrom time.Time
}

// New returns a manager on the lease bucket, creating it (EnsureBucket).
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Manager, error) {
	if err := watcher.ValidateToken(cfg.Replica); err != nil {
		return nil, fmt.Errorf("lease replica id %s: %w", watcher.Quote(cfg.Replica), err)
	}
	cfg.Bucket = cmp.Or(cfg.Bucket, DefaultBucket)
	cfg.TTL = cmp.Or(cfg.TTL, DefaultTTL)
	cfg.Margin = cmp.Or(cfg.Margin, cfg.TTL/5)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Margin >= cfg.TTL {
		return nil, fmt.Errorf("lease margin %s is not shorter than the TTL %s", cfg.Margin, cfg.TTL)
	}
	kv, err := EnsureBucket(ctx, js, cfg.Bucket, cfg.TTL, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{kv: kv, cfg: cfg, log: log.With("replica", cfg.Replica), changes: make(chan Change, 1024),
		held: map[watcher.Target]*Lease{}}, nil
}

// SetTargets sets the targets to share; every replica should be given the
// same. It applies from the next Tick.
func (m *Manager) SetTargets(ts []watcher.Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets = slices.Clone(ts)
}

// Changes delivers every lease gained and lost, in order. It is buffered
// (1024); a consumer that falls further behind makes Tick wait.
func (m *Manager) Changes() <-chan Change { return m.changes }

// Owned returns the leases valid now, sorted by target.
func (m *Manager) Owned() []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var out []Lease
	for _, l := range m.held {
		if now.Before(l.ValidUntil) {
			out = append(out, *l)
		}
	}
	slices.SortFunc(out, func(a, b Lease) int {
		return cmp.Or(cmp.Compare(a.Target.Account, b.Target.Account), cmp.Compare(a.Target.Region, b.Target.Region))
	})
	return out
}

// Valid returns t's lease if this replica holds it and it is valid now. A
// caller checks it before starting work on t; the work it starts must
// still be fenced (see the package documentation).
func (m *Manager) Valid(t watcher.Target) (Lease, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.held[t]
	if !ok || !m.cfg.Now().Before(l.ValidUntil) {
		return Lease{}, false
	}
	return *l, true
}

// Run calls Tick every TTL/3, with up to 20% jitter, until ctx ends, then
// releases every lease it holds (best effort, so successors need not wait
// for the TTL) and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	for {
		m.Tick(ctx)
		d := m.cfg.TTL / 3
		d += time.Duration(rand.Int64N(int64(d/5)+1)) - d/10
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.TTL/3)
			m.ReleaseAll(rctx)
			cancel()
			return nil
		case <-time.After(d):
		}
	}
}

type value struct {
	Replica string    `json:"replica"`
	Since   time.Time `json:"since"`
}

func leaseKey(t watcher.Target) string { return "lease." + t.Account + "." + t.Region }

const registryPrefix = "replica."

// Tick does one round: registers this replica, reads the live replicas,
// renews or releases every lease held and tries to take every target
// assigned here. Errors are logged and retried on the next round; a lease
// that could not be renewed stays held until it is no longer valid. A
// round that could not register or read the live replicas takes nothing.
func (m *Manager) Tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.TTL/3)
	defer cancel()
	live, err := m.register(ctx)
	if err != nil {
		m.log.Warn("lease registry", "err", err)
	}
	m.mu.Lock()
	assigned := Assign(m.targets, live)
	held := make([]*Lease, 0, len(m.held))
	for _, l := range m.held {
		held = append(held, l)
	}
	m.mu.Unlock()

	for _, l := range held {
		switch {
		case !m.cfg.Now().Before(l.ValidUntil):
			m.drop(l, "expired")
			// Best effort: if it is still ours on the server, free it.
			_ = m.kv.Delete(ctx, leaseKey(l.Target), jetstream.LastRevision(l.revision))
		case err == nil && assigned[l.Target] != m.cfg.Replica:
			m.drop(l, "released")
			if err := m.kv.Delete(ctx, leaseKey(l.Target), jetstream.LastRevision(l.revision)); err != nil {
				m.log.Warn("lease release", "target", l.Target.String(), "err", err)
			}
		default:
			m.renew(ctx, l)
		}
	}
	m.mu.Lock()
	if m.takeFrom.IsZero() {
		m.takeFrom = m.cfg.Now().Add(m.cfg.Campaign)
	}
	campaigning := m.cfg.Now().Before(m.takeFrom)
	m.mu.Unlock()
	if campaigning {
		return // registered; the others started with it are registering too
	}
	if err != nil {
		// Without the live set the assignment above is this replica's
		// alone (every target): taking by it would grab the others'
		// share the moment their leases lapse, as after a NATS node's
		// failover. Renew what is held, take nothing new.
		return
	}
	for t, r := range assigned {
		if r != m.cfg.Replica {
			continue
		}
		m.mu.Lock()
		_, ok := m.held[t]
		m.mu.Unlock()
		if !ok {
			m.take(ctx, t)
		}
	}
}

// register renews this replica's registry entry and lists the live
// replicas (this one always included).
func (m *Manager) register(ctx context.Context) ([]string, error) {
	key := registryPrefix + m.cfg.Replica
	val, _ := json.Marshal(value{Replica: m.cfg.Replica, Since: m.cfg.Now()})
	_, err := m.kv.Put(ctx, key, val)
	live := []string{m.cfg.Replica}
	if err != nil {
		return live, fmt.Errorf("register %s: %w", key, err)
	}
	lister, err := m.kv.ListKeysFiltered(ctx, registryPrefix+"*")
	if err != nil {
		return live, fmt.Errorf("list replicas: %w", err)
	}
	for k := range lister.Keys() {
		if id, ok := strings.CutPrefix(k, registryPrefix); ok && id != m.cfg.Replica {
			live = append(live, id)
		}
	}
	return live, nil
}

func (m *Manager) take(ctx context.Context, t watcher.Target) {
	sent := m.cfg.Now()
	val, _ := json.Marshal(value{Replica: m.cfg.Replica, Since: sent})
	rev, err := m.kv.Create(ctx, leaseKey(t), val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return // held by another replica until it releases it or it expires
	}
	if err != nil {
		m.log.Warn("lease take", "target", t.String(), "err", err)
		return
	}
	l := &Lease{Target: t, Token: rev, Since: sent, ValidUntil: sent.Add(m.cfg.TTL - m.cfg.Margin), revision: rev}
	m.mu.Lock()
	m.held[t] = l
	m.mu.Unlock()
	m.log.Info("lease taken", "target", t.String(), "token", rev)
	m.changes <- Change{Lease: *l, Gained: true}
}

func (m *Manager) renew(ctx context.Context, l *Lease) {
	sent := m.cfg.Now()
	val, _ := json.Marshal(value{Replica: m.cfg.Replica, Since: l.Since})
	rev, err := m.kv.Update(ctx, leaseKey(l.Target), val, l.revision)
	switch {
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
		m.drop(l, "taken")
	case err != nil:
		m.log.Warn("lease renewal failed", "target", l.Target.String(), "valid_until", l.ValidUntil, "err", err)
	default:
		if late := sent.Sub(l.ValidUntil.Add(-m.cfg.TTL + m.cfg.Margin)); late > m.cfg.TTL/2 {
			m.log.Warn("lease renewed late", "target", l.Target.String(), "since_last", late.Round(time.Millisecond))
		}
		m.mu.Lock()
		l.revision, l.ValidUntil = rev, sent.Add(m.cfg.TTL-m.cfg.Margin)
		m.mu.Unlock()
	}
}

// drop forgets l and reports it lost.
func (m *Manager) drop(l *Lease, reason string) {
	m.mu.Lock()
	delete(m.held, l.Target)
	c := Change{Lease: *l, Reason: reason}
	m.mu.Unlock()
	m.log.Warn("lease lost", "target", l.Target.String(), "token", l.Token, "reason", reason)
	m.changes <- c
}

// ReleaseAll releases every lease held and the registry entry (a clean
// shutdown), reporting each lost with reason "stopped".
func (m *Manager) ReleaseAll(ctx context.Context) {
	m.mu.Lock()
	held := make([]*Lease, 0, len(m.held))
	for _, l := range m.held {
		held = append(held, l)
	}
	m.mu.Unlock()
	for _, l := range held {
		m.drop(l, "stopped")
		_ = m.kv.Delete(ctx, leaseKey(l.Target), jetstream.LastRevision(l.revision))
	}
	_ = m.kv.Delete(ctx, registryPrefix+m.cfg.Replica)
}
