package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Sentinels of the stream readers, for callers that explain them.
var (
	// ErrNoStream: the stream does not exist on the server.
	ErrNoStream = errors.New("no such stream")
	// ErrNoJetStream: the server has no JetStream, so it stores nothing.
	ErrNoJetStream = errors.New("the server has no JetStream")
)

// StoredMessage is one message as a stream stores it.
type StoredMessage struct {
	Seq     uint64 // stream sequence
	Subject string
	MsgID   string    // the Nats-Msg-Id header
	Time    time.Time // when the stream stored it
	Data    []byte    // the caller's own copy
}

// StateFilter is the subject filter of every state event under prefix
// (DefaultPrefix if empty).
func StateFilter(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ".state.>"
}

// InstanceFilter is the subject filter of one instance's state events.
func InstanceFilter(prefix, instanceID string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ".state.*.*." + instanceID + ".>"
}

// ReadStream reads every state message under prefix stored in stream (see
// ReadAll).
func ReadStream(ctx context.Context, js jetstream.JetStream, stream, prefix string) ([]StoredMessage, error) {
	return ReadAll(ctx, js, stream, StateFilter(prefix))
}

// ReadAll reads the messages of stream whose subjects match filter, in
// stream order, from the first one stored to the last one stored when it
// started, with an ordered consumer (nothing is left on the server). It never
// waits for messages to come. On an error it returns what it read so far.
func ReadAll(ctx context.Context, js jetstream.JetStream, stream, filter string) ([]StoredMessage, error) {
	return ReadSince(ctx, js, stream, filter, time.Time{})
}

// ReadSince is ReadAll from the first message stored at or after start
// (from the first one if start is zero): the server skips the older ones,
// which are never sent.
func ReadSince(ctx context.Context, js jetstream.JetStream, stream, filter string, start time.Time) ([]StoredMessage, error) {
	// Right after a stream's leader is lost, API calls and fetches can go
	// unanswered until a new leader is elected: each call and fetch here is
	// bounded and tried again while ctx lasts, so the read ends soon after
	// the election instead of at the caller's deadline.
	var s jetstream.Stream
	if err := retryCall(ctx, func(cctx context.Context) (err error) {
		s, err = lookup(cctx, js, stream)
		return err
	}); err != nil {
		return nil, err
	}
	// A failed reset (the consumer re-created for a fetch) ends that fetch
	// with an error instead of retrying without end; the loop tries again.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, MaxResetAttempts: 2}
	if !start.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	var cons jetstream.Consumer
	var info *jetstream.ConsumerInfo
	if err := retryCall(ctx, func(cctx context.Context) (err error) {
		if cons, err = s.OrderedConsumer(cctx, cfg); err != nil {
			return err
		}
		info, err = cons.Info(cctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	want := int(info.NumPending)
	out := make([]StoredMessage, 0, want)
	for len(out) < want {
		if ctx.Err() != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, ctx.Err())
		}
		// Each fetch waits a bounded time and the next one starts a fresh
		// consumer from where this one ended (the ordered consumer resets
		// on every fetch), so a consumer left on a node that just lost the
		// stream's leadership costs one wait, not the caller's deadline.
		batch, err := cons.Fetch(min(want-len(out), 1000), jetstream.FetchMaxWait(fetchWait(ctx)))
		if err != nil {
			if transient(err) {
				continue
			}
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
		for m := range batch.Messages() {
			sm, err := stored(m)
			if err != nil {
				return out, fmt.Errorf("read stream %s: %w", stream, err)
			}
			out = append(out, sm)
		}
		if err := batch.Error(); err != nil && !transient(err) {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
	}
	return out, nil
}

// apiCallTimeout bounds one JetStream API call of the readers.
const apiCallTimeout = 5 * time.Second

// retryCall calls call with a context bounded by apiCallTimeout, again
// while the error is transient (see transient) and ctx lasts.
func retryCall(ctx context.Context, call func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
		err := call(cctx)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		if watcher.Sleep(ctx, watcher.Backoff(attempt, 100*time.Millisecond, time.Second)) != nil {
			return err
		}
	}
}

// transient reports whether err is what a JetStream call answers while a
// stream or its consumer has no leader: a timeout, no responders, or a
// consumer that could not be re-created.
func transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrOrderedConsumerReset)
}

// maxFetchWait bounds one fetch of ReadAll.
const maxFetchWait = 5 * time.Second

// fetchWait is maxFetchWait, or less when ctx ends sooner.
func fetchWait(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(min(maxFetchWait, time.Until(dl)), 10*time.Millisecond)
	}
	return maxFetchWait
}

// Follow calls fn with each message of stream whose subject matches one of
// filters (one consumer: one stream order across them all),
// in stream order: first those stored since start (from the first one if
// start is zero), then each new one as it is stored, until ctx ends (then it
// returns nil, even when it ends before the first message) or fn returns an
// error (which it returns).
func Follow(ctx context.Context, js jetstream.JetStream, stream string, filters []string, start time.Time, fn func(StoredMessage) error) error {
	s, err := lookup(ctx, js, stream)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	filter := strings.Join(filters, ", ")
	if !start.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // ended while the consumer was being created
		}
		return fmt.Errorf("stream %s: consumer on %s: %w", stream, filter, err)
	}
	it, err := cons.Messages()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("stream %s: read %s: %w", stream, filter, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("stream %s: %w", stream, err)
		}
		sm, err := stored(m)
		if err != nil {
			return fmt.Errorf("stream %s: %w", stream, err)
		}
		if err := fn(sm); err != nil {
			return err
		}
	}
}

// StreamContents says what a stream captures and what it holds.
type StreamContents struct {
	Subjects []string // the subjects it captures, from its configuration
	Messages uint64   // messages it holds
	// UnderPrefix counts the messages it holds under the prefix asked for
	// (its state events).
	UnderPrefix uint64
}

// Prefixes returns the prefixes of the subjects the stream captures: the
// first token of each, where that is a literal token ("cvmbig" for
// "cvmbig.>"), in order, without repeats.
func (c StreamContents) Prefixes() []string {
	var out []string
	for _, s := range c.Subjects {
		first, _, _ := strings.Cut(s, ".")
		if first == "" || first == "*" || first == ">" || strings.HasPrefix(first, "$") || slices.Contains(out, first) {
			continue
		}
		out = append(out, first)
	}
	return out
}

// DescribeStream says what stream captures and holds, and how many of its
// messages are state events under prefix.
func DescribeStream(ctx context.Context, js jetstream.JetStream, stream, prefix string) (StreamContents, error) {
	s, err := lookup(ctx, js, stream)
	if err != nil {
		return StreamContents{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return StreamContents{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	c := StreamContents{Subjects: info.Config.Subjects, Messages: info.State.Msgs}
	if c.Messages == 0 {
		return c, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{StateFilter(prefix)}})
	if err != nil {
		return c, fmt.Errorf("stream %s: %w", stream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return c, fmt.Errorf("stream %s: %w", stream, err)
	}
	c.UnderPrefix = ci.NumPending
	return c, nil
}

// lookup returns the stream, with ErrNoStream or ErrNoJetStream in the
// error where that is the cause.
func lookup(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("stream %s: %w", name, ErrNoStream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrJetStreamNotEnabled):
		return nil, ErrNoJetStream
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// stored copies what a reader needs of m.
func stored(m jetstream.Msg) (StoredMessage, error) {
	md, err := m.Metadata()
	if err != nil {
		return StoredMessage{}, err
	}
	return StoredMessage{
		Seq:     md.Sequence.Stream,
		Subject: m.Subject(),
		MsgID:   m.Headers().Get(HeaderMsgID),
		Time:    md.Timestamp,
		Data:    append([]byte(nil), m.Data()...),
	}, nil
}

// ErrNoScan: the scans stream holds no summary of the target.
var ErrNoScan = errors.New("no scan summary")

// StoredScan is a scan summary and when the stream stored it.
type StoredScan struct {
	ScanMessage
	Stored time.Time
}

// LatestScan returns the latest scan summary of target stored in the scans
// stream: a direct get, last by subject, when the stream allows direct gets
// (as the one cvmwatch creates does). It returns ErrNoScan if the stream
// holds none: the target was not scanned within the stream's max age, or
// not under this prefix.
func LatestScan(ctx context.Context, js jetstream.JetStream, stream, prefix string, target watcher.Target) (StoredScan, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	subject, err := watcher.ScanSubject(prefix, target)
	if err != nil {
		return StoredScan{}, err
	}
	s, err := lookup(ctx, js, stream)
	if err != nil {
		return StoredScan{}, err
	}
	return lastScan(ctx, s, subject)
}

// LatestScans returns the latest scan summary of every target the scans
// stream holds under prefix, in subject order: one stream info, then one
// get per target.
func LatestScans(ctx context.Context, js jetstream.JetStream, stream, prefix string) ([]StoredScan, error) {
	s, err := lookup(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(ScanFilter(prefix)))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	subjects := slices.Sorted(maps.Keys(info.State.Subjects))
	out := make([]StoredScan, 0, len(subjects))
	for _, subject := range subjects {
		sc, err := lastScan(ctx, s, subject)
		if errors.Is(err, ErrNoScan) {
			continue // aged out since the info
		}
		if err != nil {
			return out, err
		}
		out = append(out, sc)
	}
	return out, nil
}

func lastScan(ctx context.Context, s jetstream.Stream, subject string) (StoredScan, error) {
	name := s.CachedInfo().Config.Name
	m, err := s.GetLastMsgForSubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return StoredScan{}, fmt.Errorf("stream %s, %s: %w", name, subject, ErrNoScan)
	case err != nil:
		return StoredScan{}, fmt.Errorf("stream %s, %s: %w", name, subject, err)
	}
	sc := StoredScan{Stored: m.Time}
	if err := json.Unmarshal(m.Data, &sc.ScanMessage); err != nil {
		return StoredScan{}, fmt.Errorf("stream %s, %s seq %d: %w", name, subject, m.Sequence, err)
	}
	return sc, nil
}

// DescribeStreams returns the name, subjects and replicas of each stream
// that exists, skipping those that do not.
func DescribeStreams(ctx context.Context, js jetstream.JetStream, names ...string) ([]StreamStatus, error) {
	var out []StreamStatus
	for _, name := range names {
		s, err := lookup(ctx, js, name)
		if errors.Is(err, ErrNoStream) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, streamStatus(s.CachedInfo()))
	}
	return out, nil
}
