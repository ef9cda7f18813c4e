package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of StreamConfig.
const (
	DefaultStreamName = "CVMWATCH"
	// DefaultDuplicates is the de-duplication window: longer than any relay
	// retry horizon (a re-send after a NATS outage of a few minutes is still
	// dropped), short enough that the server's memory for message IDs stays
	// small. Consumers de-duplicate on the event id beyond it.
	DefaultDuplicates = 10 * time.Minute
)

// StreamConfig describes the JetStream stream that stores cvmwatch events.
type StreamConfig struct {
	// Name of the stream; default "CVMWATCH".
	Name string
	// Prefix is the subject prefix; the stream captures Prefix+".>" (state
	// events and scan summaries). Default "cvm".
	Prefix string
	// MaxAge is how long messages are kept. Default 0: forever, because
	// audit-trail consumers replay the history and a subscriber that was
	// down longer than MaxAge would miss transitions. Disk use then grows
	// with the event and heartbeat rate (a few hundred bytes per message);
	// set a MaxAge (such as 720h) where that matters. 0 leaves an existing
	// stream's max age as it is.
	MaxAge time.Duration
	// Duplicates is the window in which a re-sent event ID is dropped;
	// default 10 minutes. It must not exceed MaxAge when MaxAge is set. An
	// existing stream's longer window is kept.
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster, 1 to MaxReplicas.
	// AutoReplicas (0) gives a new stream 3 on a JetStream cluster of at
	// least 3 servers, else 1 (see CreateReplicated), and leaves an
	// existing stream's count as it is. A set count scales an existing
	// stream up, never down (a warning says what to run instead).
	Replicas int
	// Logger receives the replica count chosen for a new stream, and a
	// warning when an existing stream's limits differ from these and are
	// not changed; nil discards.
	Logger *slog.Logger
}

// EnsureStream creates the stream, or adjusts an existing one, and returns
// it. It is idempotent. Storage is always file.
//
// An existing stream of that name must already capture Prefix+".>" (other
// subjects it holds are kept) and use file storage; otherwise EnsureStream
// changes nothing and returns an error saying what conflicts, rather than
// taking the stream over. Of its limits, only what cfg asks for is changed
// (an operator's stream is theirs): a set MaxAge, a set Replicas above the
// stream's own (fewer is a warning, never a silent scale-down), and a
// duplicates window shorter than Duplicates (a shorter one weakens
// de-duplication after an outage). If the server refuses that update, for
// example because cvmwatch may not update streams, the stream is used as it
// is and a warning says what differs; any other failure is returned.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	name := cfg.Name
	if name == "" {
		name = DefaultStreamName
	}
	prefix, err := prefixOrDefault(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	subject := prefix + ".>"
	dup := cfg.Duplicates
	if dup == 0 {
		dup = DefaultDuplicates
	}
	switch {
	case dup < 0:
		return nil, fmt.Errorf("stream %s: duplicates window %s is negative", name, dup)
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("stream %s: max age %s is negative", name, cfg.MaxAge)
	case cfg.MaxAge > 0 && dup > cfg.MaxAge:
		return nil, fmt.Errorf("stream %s: duplicates window %s is longer than max age %s", name, dup, cfg.MaxAge)
	}
	if err := CheckReplicas(cfg.Replicas); err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	s, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		choice, err := CreateReplicated(ctx, js, cfg.Replicas, func(ctx context.Context, replicas int) error {
			s, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        name,
				Description: "cvmwatch: CVM instance state events and scan summaries",
				Subjects:    []string{subject},
				Storage:     jetstream.FileStorage,
				Retention:   jetstream.LimitsPolicy,
				Discard:     jetstream.DiscardOld,
				MaxAge:      cfg.MaxAge,
				Duplicates:  dup,
				Replicas:    replicas,
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create stream %s on %s: %w", name, subject, err)
		}
		log.Info("nats stream created", "stream", name, "replicas", choice.Replicas, "why", choice.Reason)
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("look up stream %s: %w", name, err)
	}

	have := s.CachedInfo().Config
	if !slices.Contains(have.Subjects, subject) {
		return nil, fmt.Errorf("stream %s exists with subjects %q, not %q: use another stream name or fix that stream", name, have.Subjects, subject)
	}
	if have.Storage != jetstream.FileStorage {
		return nil, fmt.Errorf("stream %s exists with %s storage, want file", name, have.Storage)
	}
	want := have
	if cfg.MaxAge > 0 {
		want.MaxAge = cfg.MaxAge
	}
	if have.Duplicates < dup {
		want.Duplicates = dup
	}
	switch {
	case cfg.Replicas > have.Replicas:
		want.Replicas = cfg.Replicas
	case cfg.Replicas != AutoReplicas && cfg.Replicas < have.Replicas:
		log.Warn("stream has more replicas than the configuration asks for; not scaling it down",
			"stream", name, "replicas", have.Replicas, "want_replicas", cfg.Replicas,
			"to_scale_down", fmt.Sprintf("nats stream edit %s --replicas %d", name, cfg.Replicas))
	}
	if want.MaxAge == have.MaxAge && want.Duplicates == have.Duplicates && want.Replicas == have.Replicas {
		return s, nil
	}
	updated, err := js.UpdateStream(ctx, want)
	if err != nil {
		// Only the server's refusal (no permission, a limit it rejects)
		// means "use it as it is"; a timeout or a disconnect is retried
		// like any failed set-up.
		var refused *jetstream.APIError
		if !errors.As(err, &refused) {
			return nil, fmt.Errorf("update stream %s: %w", name, err)
		}
		log.Warn("stream limits differ from the configuration and could not be changed; using the stream as it is",
			"stream", name, "err", err,
			"max_age", have.MaxAge.String(), "want_max_age", want.MaxAge.String(),
			"duplicates", have.Duplicates.String(), "want_duplicates", want.Duplicates.String(),
			"replicas", have.Replicas, "want_replicas", want.Replicas)
		return s, nil
	}
	return updated, nil
}
