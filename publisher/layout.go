package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The layout of cvmwatch's streams: the event stream keeps the history
// (transitions, attributions, operations), the scans stream the latest scan
// summaries of each target.
const (
	// MetadataLayout is the stream metadata key cvmwatch sets on the
	// streams it creates (server 2.10 or later keeps metadata): its value
	// says which of cvmwatch's streams it is. A stream without it was
	// created by an operator, or by a release before the split (recognised
	// then by its exact old configuration, see legacyLayout).
	MetadataLayout = "io.github.cvmwatch.layout"
	layoutEvents   = "events/v2"
	layoutScans    = "scans/v2"

	// DefaultScanKeep is how many summaries of each target the scans
	// stream keeps (MaxMsgsPerSubject): 50 minutes at the default 30 s.
	DefaultScanKeep = 100
	// DefaultScanMaxAge bounds a summary's life: a target no longer scanned
	// leaves the stream a day later, and a target whose latest summary is
	// gone has not been scanned for a day.
	DefaultScanMaxAge = 24 * time.Hour

	eventsDescription = "cvmwatch: CVM instance state transitions, attributions and operations (the audit trail)"
	scansDescription  = "cvmwatch: the latest scan summaries of each target"
	// legacyDescription is what releases before the split wrote on the one
	// stream they created, capturing <prefix>.>.
	legacyDescription = "cvmwatch: CVM instance state events and scan summaries"
)

// errCodeSubjectsOverlap is the server's answer to a stream whose subjects
// another stream captures.
const errCodeSubjectsOverlap jetstream.ErrorCode = 10065

// EventSubjects are the subjects the event stream captures under prefix
// (DefaultPrefix if empty): state transitions, attributions and operations.
// Scan summaries are not among them.
func EventSubjects(prefix string) []string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return []string{prefix + ".state.>", prefix + ".attribution.>", prefix + ".operation.>"}
}

// EpochFilter is the subject filter of the epoch messages under prefix
// (ClaimEpoch, HA only): "<prefix>.epoch.>". Readers of events filter on
// StateFilter and never see them.
func EpochFilter(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ".epoch.>"
}

// EpochSubject is the epoch subject of a target under prefix:
// "<prefix>.epoch.<account>.<region>". account and region must be valid
// subject tokens (every watcher.Target is).
func EpochSubject(prefix, account, region string) string {
	return strings.TrimSuffix(EpochFilter(prefix), ">") + account + "." + region
}

// streamSubjects are the subjects cfg's event stream captures:
// EventSubjects, plus EpochFilter when cfg.Epochs is set.
func streamSubjects(prefix string, epochs bool) []string {
	subjects := EventSubjects(prefix)
	if epochs {
		subjects = append(subjects, EpochFilter(prefix))
	}
	return subjects
}

// ScanFilter is the subject filter of every scan summary under prefix.
func ScanFilter(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ".scan.>"
}

// ScanStreamName is the default name of the scans stream beside the event
// stream events: events + "_SCANS".
func ScanStreamName(events string) string {
	if events == "" {
		events = DefaultStreamName
	}
	return events + "_SCANS"
}

// legacyLayout reports whether c is the one stream a release before the
// split created: exactly <prefix>.>, with its description and limits
// retention. Only then may cvmwatch narrow a stream that lacks
// MetadataLayout.
func legacyLayout(c jetstream.StreamConfig, prefix string) bool {
	return slices.Equal(c.Subjects, []string{prefix + ".>"}) && c.Description == legacyDescription &&
		c.Retention == jetstream.LimitsPolicy && c.Metadata[MetadataLayout] == ""
}

// editCommands are the nats CLI commands that give an operator's stream
// the event stream's layout, for the warning that asks them to run them.
func editCommands(name, prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nats stream edit %s", name)
	for _, s := range EventSubjects(prefix) {
		fmt.Fprintf(&b, " --subjects '%s'", s)
	}
	fmt.Fprintf(&b, " -f && nats stream purge %s --subject '%s' -f", name, ScanFilter(prefix))
	return b.String()
}

// eventSubjects checks the subjects of an existing event stream and returns
// those it should capture. wide says it still captures <prefix>.> (so the
// scans stream cannot exist beside it).
func eventSubjects(have jetstream.StreamConfig, name, prefix string, epochs bool, log *slog.Logger) (want []string, wide bool, err error) {
	all := prefix + ".>"
	if legacyLayout(have, prefix) || (have.Metadata[MetadataLayout] == layoutEvents && slices.Contains(have.Subjects, all)) {
		// Ours, in the old layout: narrow it (the caller then creates the
		// scans stream and purges the old summaries, in that order).
		return streamSubjects(prefix, epochs), false, nil
	}
	switch {
	case slices.Contains(have.Subjects, all):
		log.Warn("stream captures every subject under the prefix, scan summaries included; it is not cvmwatch's, so it is left as it is: "+
			"summaries stay in it and no scans stream is created. To give it the event stream's layout, run the command shown, then restart cvmwatch",
			"stream", name, "subjects", have.Subjects, "run", editCommands(name, prefix))
		return have.Subjects, true, nil
	case !slices.Contains(have.Subjects, StateFilter(prefix)):
		return nil, false, fmt.Errorf("stream %s exists with subjects %q, without %q: use another stream name or fix that stream", name, have.Subjects, StateFilter(prefix))
	}
	var missing []string
	for _, s := range streamSubjects(prefix, epochs) {
		if !slices.Contains(have.Subjects, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 && have.Metadata[MetadataLayout] == layoutEvents {
		return append(slices.Clone(have.Subjects), missing...), false, nil
	}
	if len(missing) > 0 {
		log.Warn("stream does not capture every event subject; events published on them will not be stored",
			"stream", name, "missing", missing, "run", editCommands(name, prefix))
	}
	return have.Subjects, false, nil
}

// scanStreamConfig is the scans stream as cfg asks for it.
func scanStreamConfig(cfg StreamConfig, name, prefix string) jetstream.StreamConfig {
	keep, age := cfg.ScanKeep, cfg.ScanMaxAge
	if keep <= 0 {
		keep = DefaultScanKeep
	}
	if age <= 0 {
		age = DefaultScanMaxAge
	}
	return jetstream.StreamConfig{
		Name:              name,
		Description:       scansDescription,
		Subjects:          []string{ScanFilter(prefix)},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(keep),
		MaxAge:            age,
		Duplicates:        min(DefaultDuplicates, age),
		AllowDirect:       true, // the latest summary of a target is one direct get
		Metadata:          map[string]string{MetadataLayout: layoutScans},
	}
}

// ensureScanStream creates the scans stream, or brings an existing one to
// cfg's per-target limit, max age and direct gets. It returns nil and no
// error when the event stream still captures the summaries (wide): the
// server would refuse the overlap.
func ensureScanStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, prefix string, wide bool, log *slog.Logger) (jetstream.Stream, error) {
	name := cfg.ScanStream
	if name == "" {
		name = ScanStreamName(cfg.Name)
	}
	want := scanStreamConfig(cfg, name, prefix)
	s, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && wide:
		return nil, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		choice, err := CreateReplicated(ctx, js, cfg.Replicas, func(ctx context.Context, replicas int) error {
			c := want
			c.Replicas = replicas
			s, err = js.CreateStream(ctx, c)
			return err
		})
		var api *jetstream.APIError
		if errors.As(err, &api) && api.ErrorCode == errCodeSubjectsOverlap {
			log.Warn("scans stream not created: another stream captures the scan summaries", "stream", name, "subject", ScanFilter(prefix), "err", err)
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("create stream %s on %s: %w", name, ScanFilter(prefix), err)
		}
		log.Info("nats stream created", "stream", name, "replicas", choice.Replicas, "why", choice.Reason)
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("look up stream %s: %w", name, err)
	}
	have := s.CachedInfo().Config
	if !slices.Contains(have.Subjects, ScanFilter(prefix)) {
		return nil, fmt.Errorf("stream %s exists with subjects %q, not %q: use another nats.scan_stream or fix that stream", name, have.Subjects, ScanFilter(prefix))
	}
	next := have
	next.MaxMsgsPerSubject, next.MaxAge, next.AllowDirect = want.MaxMsgsPerSubject, want.MaxAge, true
	next.Duplicates = min(have.Duplicates, want.MaxAge)
	next.Replicas = scaledReplicas(have, cfg.Replicas, log)
	if next.MaxMsgsPerSubject == have.MaxMsgsPerSubject && next.MaxAge == have.MaxAge && have.AllowDirect &&
		next.Duplicates == have.Duplicates && next.Replicas == have.Replicas {
		return s, nil
	}
	updated, _, err := updateStream(ctx, js, s, next, log)
	return updated, err
}

// scaledReplicas is the replica count of an existing stream under the
// configured count: more is a scale-up, fewer a warning (never applied),
// AutoReplicas keeps the stream's own.
func scaledReplicas(have jetstream.StreamConfig, configured int, log *slog.Logger) int {
	switch {
	case configured > have.Replicas:
		return configured
	case configured != AutoReplicas && configured < have.Replicas:
		log.Warn("stream has more replicas than the configuration asks for; not scaling it down",
			"stream", have.Name, "replicas", have.Replicas, "want_replicas", configured,
			"to_scale_down", fmt.Sprintf("nats stream edit %s --replicas %d", have.Name, configured))
	}
	return have.Replicas
}

// purgeOldSummaries removes the scan summaries an event stream of ours kept
// from before the split. It runs on every set-up, so that a set-up cut
// short between narrowing and purging finishes on the next; it costs one
// stream info when there is nothing to purge.
func purgeOldSummaries(ctx context.Context, s jetstream.Stream, prefix string, log *slog.Logger) error {
	c := s.CachedInfo().Config
	if c.Metadata[MetadataLayout] != layoutEvents || slices.Contains(c.Subjects, prefix+".>") {
		return nil
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(ScanFilter(prefix)))
	if err != nil {
		return fmt.Errorf("stream %s: %w", c.Name, err)
	}
	if len(info.State.Subjects) == 0 {
		return nil
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(ScanFilter(prefix))); err != nil {
		var refused *jetstream.APIError
		if errors.As(err, &refused) {
			log.Warn("old scan summaries could not be purged from the event stream", "stream", c.Name, "err", err,
				"run", fmt.Sprintf("nats stream purge %s --subject '%s' -f", c.Name, ScanFilter(prefix)))
			return nil
		}
		return fmt.Errorf("stream %s: purge %s: %w", c.Name, ScanFilter(prefix), err)
	}
	n := 0
	for _, m := range info.State.Subjects {
		n += int(m)
	}
	log.Info("old scan summaries purged from the event stream", "stream", c.Name, "summaries", n)
	return nil
}
