package jsstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// Defaults of Options.
const (
	DefaultStream       = "CVMWATCH_STATE"
	DefaultPrefix       = "cvmwatch_state"
	DefaultTimeout      = 10 * time.Second
	DefaultCompactEvery = 1000
)

// Options configure a Store.
type Options struct {
	// Stream is the stream holding the journals; default CVMWATCH_STATE.
	// It is created if missing (file storage, Replicas copies, no limits:
	// compaction bounds it).
	Stream string
	// Prefix is the journals' subject prefix; default "cvmwatch_state". It
	// must not overlap the event stream's subjects.
	Prefix string
	// Replicas is the number of copies of a new stream; default 1. Use the
	// event stream's replication (3 in a cluster of 3).
	Replicas int
	// Timeout bounds each request to the server; default 10s.
	Timeout time.Duration
	// CompactEvery is the number of journal writes after which a target's
	// journal is rewritten as one snapshot and its older messages purged,
	// unless they hold fewer bytes than the snapshot would; default 1000.
	CompactEvery int
	// Writer names this store in the journal's Cvmwatch-Writer header (for
	// people reading the journal); default a random id.
	Writer string
}

// Store is a watcher.Store on JetStream (see the package documentation).
// It is safe for concurrent use; calls for one target are serialized. It
// does not own the JetStream context and never closes its connection.
type Store struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	opts     Options
	maxChunk int

	mu      sync.Mutex // guards closed and targets
	closed  bool
	targets map[watcher.Target]*target
}

// target is the store's knowledge of one target's journal. mu serializes
// the target's calls, network requests included.
type target struct {
	mu      sync.Mutex
	subject string
	v       *view  // nil: not read yet, or dropped
	last    uint64 // stream sequence of the journal's last message as v knows it
	// needLoad: a write's outcome is unknown or was fenced; Commit refuses
	// until Load.
	needLoad bool
	// writes and bytes since the journal's last snapshot; snapBytes is the
	// size of that snapshot.
	writes, bytes, snapBytes int
}

var _ watcher.Store = (*Store)(nil)

// Open returns a store on js, creating the stream if it does not exist.
// An existing stream must capture Prefix+".>".
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	opts.Stream = cmp.Or(opts.Stream, DefaultStream)
	opts.Prefix = cmp.Or(opts.Prefix, DefaultPrefix)
	opts.Timeout = cmp.Or(opts.Timeout, DefaultTimeout)
	opts.CompactEvery = cmp.Or(opts.CompactEvery, DefaultCompactEvery)
	if opts.Writer == "" {
		var b [8]byte
		rand.Read(b[:])
		opts.Writer = hex.EncodeToString(b[:])
	}
	if err := watcher.ValidatePrefix(opts.Prefix); err != nil {
		return nil, fmt.Errorf("journal store prefix: %w", err)
	}
	subjects := opts.Prefix + ".>"
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	st, err := js.Stream(ctx, opts.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        opts.Stream,
			Description: "cvmwatch: per-target snapshot and outbox journals (HA)",
			Subjects:    []string{subjects},
			Storage:     jetstream.FileStorage,
			Replicas:    max(opts.Replicas, 1),
			// A journal is read from its first message: nothing but
			// compaction may remove any.
			Discard: jetstream.DiscardNew,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("journal stream %s: %w", opts.Stream, err)
	}
	if have := st.CachedInfo().Config.Subjects; !slices.Contains(have, subjects) {
		return nil, fmt.Errorf("journal stream %s captures %q, not %q", opts.Stream, have, subjects)
	}
	s := &Store{js: js, stream: st, opts: opts, targets: map[watcher.Target]*target{}}
	// Leave room for the headers within the server's max payload.
	s.maxChunk = 1 << 20
	if mp := js.Conn().MaxPayload(); mp > 0 {
		s.maxChunk = int(mp) - 4096
	}
	return s, nil
}

// SetMaxPart sets the largest message body a journal write uses before
// cutting it into parts (tests use it to exercise parts without megabytes).
func (s *Store) SetMaxPart(n int) { s.maxChunk = n }

// acquire returns target t, locked, or fails once the store is closed.
func (s *Store) acquire(ctx context.Context, t watcher.Target) (*target, error) {
	if err := store.ValidateTarget(t); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, watcher.ErrStoreClosed
	}
	tg := s.targets[t]
	if tg == nil {
		tg = &target{subject: s.opts.Prefix + "." + t.Account + "." + t.Region}
		s.targets[t] = tg
	}
	s.mu.Unlock()
	tg.mu.Lock()
	if err := ctx.Err(); err != nil {
		tg.mu.Unlock()
		return nil, err
	}
	return tg, nil
}

// Targets lists the targets that have a journal, sorted by account then
// region. It reads the stream's subjects, so it also lists targets other
// replicas own.
func (s *Store) Targets(ctx context.Context) ([]watcher.Target, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("targets: %w", watcher.ErrStoreClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.opts.Prefix+".>"))
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	var out []watcher.Target
	for subj := range info.State.Subjects {
		rest, _ := strings.CutPrefix(subj, s.opts.Prefix+".")
		acct, region, ok := strings.Cut(rest, ".")
		t := watcher.Target{Account: acct, Region: region}
		if ok && store.ValidateTarget(t) == nil {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b watcher.Target) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	return out, nil
}

// Close forgets every cached view. Calling it again returns nil; any other
// call after it returns watcher.ErrStoreClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.targets = nil
	return nil
}
