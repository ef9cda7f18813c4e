package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
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

// StreamConfig describes the JetStream streams that store cvmwatch's
// messages: the event stream (the history) and the scans stream (the latest
// scan summaries of each target).
type StreamConfig struct {
	// Name of the event stream; default "CVMWATCH".
	Name string
	// Prefix is the subject prefix; the event stream captures
	// EventSubjects(Prefix), the scans stream ScanFilter(Prefix). Default
	// "cvm".
	Prefix string
	// MaxAge is how long the event stream keeps events. Default 0: forever,
	// because audit-trail consumers replay the history and a subscriber that
	// was down longer than MaxAge would miss transitions. Disk use then grows
	// with the event rate only (a few hundred bytes per transition; scan
	// summaries are in the scans stream). 0 leaves an existing stream's max
	// age as it is.
	MaxAge time.Duration
	// Duplicates is the window in which a re-sent event ID is dropped;
	// default 10 minutes. It must not exceed MaxAge when MaxAge is set. An
	// existing stream's longer window is kept.
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster, 1 to MaxReplicas, of
	// both streams. AutoReplicas (0) gives a new stream 3 on a JetStream
	// cluster of at least 3 servers, else 1 (see CreateReplicated), and
	// leaves an existing stream's count as it is. A set count scales an
	// existing stream up, never down (a warning says what to run instead).
	Replicas int
	// ScanStream is the scans stream's name; default ScanStreamName(Name).
	ScanStream string
	// ScanKeep is how many summaries of each target the scans stream keeps;
	// default DefaultScanKeep (100).
	ScanKeep int
	// ScanMaxAge is how long the scans stream keeps a summary; default
	// DefaultScanMaxAge (24h).
	ScanMaxAge time.Duration
	// Epochs adds EpochFilter(Prefix) to the event stream's subjects (a
	// stream of cvmwatch's gains it on start-up), for the epoch messages of
	// HA replicas (ClaimEpoch, Fenced), and allows atomic batch publish on
	// it (FencedBatch; a stream of cvmwatch's gains it too, an operator's
	// is left as it is). Off for a single process.
	Epochs bool
	// Logger receives the replica count chosen for a new stream, what a
	// change of layout did, and a warning when an existing stream differs
	// from these and is not changed; nil discards.
	Logger *slog.Logger
}

// EnsureStream sets up the event stream and the scans stream, creating or
// adjusting them, and returns the event stream. It is idempotent. Storage
// is always file.
//
// The event stream captures EventSubjects(Prefix). One that a release
// before the split created (it captures exactly Prefix+".>", see
// MetadataLayout) is narrowed to them, the scans stream created, and the
// old summaries purged from the event stream by subject, in that order
// (the server refuses overlapping subjects). An operator's stream that
// captures Prefix+".>" is left as it is, with a warning giving the nats
// commands that would split it; summaries then stay in it and no scans
// stream is made. Any other existing stream must capture Prefix+".state.>"
// (other subjects it holds are kept) and use file storage; otherwise
// EnsureStream changes nothing and returns an error saying what conflicts.
//
// Of an existing event stream's limits, only what cfg asks for is changed
// (an operator's stream is theirs): a set MaxAge, a set Replicas above the
// stream's own (fewer is a warning, never a silent scale-down), and a
// duplicates window shorter than Duplicates (a shorter one weakens
// de-duplication after an outage). The scans stream is brought to
// ScanKeep, ScanMaxAge and direct gets. If the server refuses an update,
// for example because cvmwatch may not update streams, the stream is used
// as it is and a warning says what differs; any other failure is returned.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	s, _, err := ensureStreams(ctx, js, cfg)
	return s, err
}

// ensureStreams is EnsureStream, also returning the scans stream (nil when
// the event stream still captures the summaries).
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (events, scans jetstream.Stream, err error) {
	name := cfg.Name
	if name == "" {
		name = DefaultStreamName
	}
	prefix, err := prefixOrDefault(cfg.Prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", name, err)
	}
	dup := cfg.Duplicates
	if dup == 0 {
		dup = DefaultDuplicates
	}
	switch {
	case dup < 0:
		return nil, nil, fmt.Errorf("stream %s: duplicates window %s is negative", name, dup)
	case cfg.MaxAge < 0:
		return nil, nil, fmt.Errorf("stream %s: max age %s is negative", name, cfg.MaxAge)
	case cfg.MaxAge > 0 && dup > cfg.MaxAge:
		return nil, nil, fmt.Errorf("stream %s: duplicates window %s is longer than max age %s", name, dup, cfg.MaxAge)
	case cfg.ScanKeep < 0 || cfg.ScanMaxAge < 0:
		return nil, nil, fmt.Errorf("stream %s: scans stream limits %d, %s are negative", name, cfg.ScanKeep, cfg.ScanMaxAge)
	}
	if err := CheckReplicas(cfg.Replicas); err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", name, err)
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
				Description: eventsDescription,
				Subjects:    streamSubjects(prefix, cfg.Epochs),
				Storage:     jetstream.FileStorage,
				Retention:   jetstream.LimitsPolicy,
				Discard:     jetstream.DiscardOld,
				MaxAge:      cfg.MaxAge,
				Duplicates:  dup,
				Replicas:    replicas,
				Metadata:    map[string]string{MetadataLayout: layoutEvents},
				// HA replicas publish fenced atomic batches (FencedBatch).
				AllowAtomicPublish: cfg.Epochs,
			})
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("create stream %s on %s: %w", name, strings.Join(streamSubjects(prefix, cfg.Epochs), ", "), err)
		}
		log.Info("nats stream created", "stream", name, "replicas", choice.Replicas, "why", choice.Reason)
		scans, err := ensureScanStream(ctx, js, cfg, prefix, false, log)
		return s, scans, err
	case err != nil:
		return nil, nil, fmt.Errorf("look up stream %s: %w", name, err)
	}

	have := s.CachedInfo().Config
	if have.Storage != jetstream.FileStorage {
		return nil, nil, fmt.Errorf("stream %s exists with %s storage, want file", name, have.Storage)
	}
	subjects, wide, err := eventSubjects(have, name, prefix, cfg.Epochs, log)
	if err != nil {
		return nil, nil, err
	}
	want := have
	want.Subjects = subjects
	if !slices.Equal(subjects, have.Subjects) {
		// Ours (narrowed to the new layout, or given a new event subject).
		want.Description = eventsDescription
		want.Metadata = maps.Clone(have.Metadata)
		if want.Metadata == nil {
			want.Metadata = map[string]string{}
		}
		want.Metadata[MetadataLayout] = layoutEvents
	}
	if cfg.MaxAge > 0 {
		want.MaxAge = cfg.MaxAge
	}
	if have.Duplicates < dup {
		want.Duplicates = dup
	}
	want.Replicas = scaledReplicas(have, cfg.Replicas, log)
	if cfg.Epochs && want.Metadata[MetadataLayout] == layoutEvents {
		want.AllowAtomicPublish = true // ours only: an operator's stream is theirs
	}
	if !reflect.DeepEqual(want, have) {
		updated, refused, err := updateStream(ctx, js, s, want, log)
		switch {
		case err != nil:
			return nil, nil, err
		case refused:
			wide = slices.Contains(have.Subjects, prefix+".>")
		case !slices.Equal(want.Subjects, have.Subjects):
			log.Info("event stream narrowed to the event subjects", "stream", name, "was", have.Subjects, "subjects", want.Subjects)
		}
		s = updated
	}
	scans, err = ensureScanStream(ctx, js, cfg, prefix, wide, log)
	if err != nil {
		return nil, nil, err
	}
	if scans != nil {
		if err := purgeOldSummaries(ctx, s, prefix, log); err != nil {
			return nil, nil, err
		}
	}
	return s, scans, nil
}

// updateStream gives the stream s the configuration want. Only the server's
// refusal (no permission, a limit it rejects) means "use it as it is": it
// is logged with what differs, and s returned with refused set. A timeout
// or a disconnect is returned, to be retried like any failed set-up.
func updateStream(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, want jetstream.StreamConfig, log *slog.Logger) (_ jetstream.Stream, refused bool, _ error) {
	updated, err := js.UpdateStream(ctx, want)
	var api *jetstream.APIError
	switch {
	case errors.As(err, &api):
		have := s.CachedInfo().Config
		log.Warn("stream differs from the configuration and could not be changed; using the stream as it is",
			"stream", have.Name, "err", err, "subjects", have.Subjects, "want_subjects", want.Subjects,
			"max_age", have.MaxAge.String(), "want_max_age", want.MaxAge.String(),
			"duplicates", have.Duplicates.String(), "want_duplicates", want.Duplicates.String(),
			"replicas", have.Replicas, "want_replicas", want.Replicas,
			"max_msgs_per_subject", have.MaxMsgsPerSubject, "want_max_msgs_per_subject", want.MaxMsgsPerSubject,
			"allow_direct", have.AllowDirect, "want_allow_direct", want.AllowDirect)
		return s, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("update stream %s: %w", want.Name, err)
	}
	return updated, false, nil
}
