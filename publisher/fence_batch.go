package publisher

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Atomic batch publish (ADR-50, nats-server 2.12 and later): the headers
// and the server's limit and error codes that FencedBatch relies on.
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"

	// MaxAtomicBatch is the server's limit on the messages of one atomic
	// batch (streamMaxAtomicBatchSize).
	MaxAtomicBatch = 1000

	errCodeAtomicDisabled  jetstream.ErrorCode = 10174 // the stream does not allow atomic publish
	errCodeBatchDuplicate  jetstream.ErrorCode = 10201 // a message id of the batch is stored already
	errCodeDuplicateInProc jetstream.ErrorCode = 10158 // a message id of the batch is being stored
)

// FencedBatchConfig configures NewFencedBatch.
type FencedBatchConfig struct {
	// Prefix is the subject prefix; default "cvm".
	Prefix string
	// MaxBatch bounds the events of one atomic batch; default and at most
	// MaxAtomicBatch.
	MaxBatch int
	// AckTimeout bounds the wait for a batch's commit ack (or a single
	// publish's ack), counted from when it was sent, and PublishScan;
	// default DefaultAckTimeout.
	AckTimeout time.Duration
	// Atomic says that the event stream allows atomic publish: its
	// configuration, as the server reports it, has AllowAtomicPublish. A
	// server before 2.12 does not know batches and would store a batch's
	// messages one by one, the first fenced and the others not, so without
	// Atomic every event is published on its own, fenced, one round trip
	// each (as Fenced with a window of 1).
	Atomic bool
	// Logger receives a warning when the stream refuses atomic publish;
	// nil discards.
	Logger *slog.Logger
}

// FencedBatch publishes events fenced like Fenced, but a run of
// consecutive events of one epoch subject (one target) goes as atomic
// batches of up to MaxBatch messages: the first message of a batch carries
// Nats-Expected-Last-Subject-Sequence(-Subject) for the epoch, and the
// server stores the whole batch only if that check holds when the batch is
// committed, or nothing of it. A replica fenced out by a newer epoch has
// its whole batch refused; an owner pays one commit round trip per batch
// instead of one per event. Batches are sent one after another, so one
// epoch subject is never checked by two messages in flight (which a
// replicated stream refuses, 10164). The stream must allow atomic publish
// (StreamConfig.Epochs sets it on a stream of cvmwatch's); when it does
// not (FencedBatchConfig.Atomic false, or the stream refuses a batch),
// FencedBatch publishes one fenced event at a time, and says so in the log
// when the stream refused. It is safe for concurrent use.
type FencedBatch struct {
	js         jetstream.JetStream
	fence      Fence
	prefix     string
	max        int
	ackTimeout time.Duration
	scans      *JetStream
	log        *slog.Logger
	atomic     atomic.Bool // batches allowed: cleared when the stream refuses one
}

var _ watcher.Publisher = (*FencedBatch)(nil)

// NewFencedBatch returns a fenced batch publisher on js (not wrapped in
// Fenced: it adds the fence itself). Scan summaries go unfenced through a
// JetStream publisher on js.
func NewFencedBatch(js jetstream.JetStream, fence Fence, cfg FencedBatchConfig) (*FencedBatch, error) {
	if js == nil || fence == nil {
		return nil, errors.New("fenced batch publisher: nil jetstream context or fence")
	}
	scans, err := NewJetStream(js, JetStreamConfig{Prefix: cfg.Prefix, AckTimeout: cfg.AckTimeout})
	if err != nil {
		return nil, fmt.Errorf("fenced batch publisher: %w", err)
	}
	p := &FencedBatch{js: js, fence: fence, prefix: scans.prefix, max: cfg.MaxBatch, ackTimeout: scans.ackTimeout,
		scans: scans, log: cfg.Logger}
	if p.max <= 0 || p.max > MaxAtomicBatch {
		p.max = MaxAtomicBatch
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.atomic.Store(cfg.Atomic)
	return p, nil
}

// epochOf is the fence of a run: its epoch subject and sequence.
type epochOf struct {
	subject string
	seq     uint64
}

// Publish sends events in order, each with Nats-Msg-Id = its ID: each run
// of consecutive events of one epoch subject as atomic batches, one batch
// in flight at a time. It returns the length of the acknowledged prefix:
// an event counts once its batch (or its own publish) is acknowledged and
// every earlier one counts. The error describes the first event not
// acknowledged: an unsafe subject token or ID, a subject without an epoch
// (ErrNoEpoch), a batch the stream refused (the fence, 10071 or 10164:
// nothing of the batch is stored), or an ack not received within
// AckTimeout (the batch may be stored: re-send it).
//
// A batch refused because one of its ids is stored already (10201, a
// replay of events published before a crash) is published one event at a
// time until an event is stored anew, and the rest of it as a batch again;
// if that is refused for a duplicate too, one at a time to its end. A
// replay never blocks the relay. Canceling ctx stops sending between
// batches; a batch whose commit was sent is waited for, at most
// AckTimeout, so nothing of this call is in flight when it returns.
func (p *FencedBatch) Publish(ctx context.Context, events []watcher.Event) (int, error) {
	done := 0
	for done < len(events) {
		if err := ctx.Err(); err != nil {
			return done, p.eventErr(events, done, err)
		}
		msgs, ep, stop := p.run(events[done:])
		if len(msgs) > 0 {
			n, err := p.publishRun(ctx, events[done:done+len(msgs)], msgs, ep)
			done += n
			if err != nil {
				return done, p.eventErr(events, done, err)
			}
		}
		if stop != nil {
			return done, p.eventErr(events, done, stop)
		}
	}
	return done, nil
}

func (p *FencedBatch) eventErr(events []watcher.Event, i int, err error) error {
	e := events[i]
	return fmt.Errorf("publish event %s (%d of %d, instance %s): %w", e.ID, i+1, len(events), watcher.Quote(e.InstanceID), err)
}

// run encodes the longest head of events, at most max, whose epoch is the
// first one's. stop says why the event after them cannot be published at
// all (unsafe, or no epoch), when that ends the run.
func (p *FencedBatch) run(events []watcher.Event) (msgs []*nats.Msg, ep epochOf, stop error) {
	for i, e := range events {
		if i == p.max {
			break
		}
		msg, err := encodeEvent(p.prefix, e)
		if err != nil {
			return msgs, ep, err
		}
		subj, seq, ok := p.fence(msg.Subject)
		if !ok {
			return msgs, ep, fmt.Errorf("publish %s: %w", msg.Subject, ErrNoEpoch)
		}
		if i == 0 {
			ep = epochOf{subj, seq}
		} else if ep != (epochOf{subj, seq}) {
			break
		}
		msg.Header.Set(jetstream.MsgIDHeader, e.ID)
		msgs = append(msgs, msg)
	}
	return msgs, ep, nil
}

// publishRun publishes one run (msgs, the messages of events) and returns
// how many of it, from the first, were acknowledged.
func (p *FencedBatch) publishRun(ctx context.Context, events []watcher.Event, msgs []*nats.Msg, ep epochOf) (int, error) {
	if len(msgs) == 1 || !p.atomic.Load() {
		// A batch of one would cost the same round trip, and on R1 a
		// temporary store on the server.
		return p.singles(ctx, msgs, ep, false)
	}
	err := p.commit(ctx, msgs, ep)
	switch {
	case err == nil:
		return len(msgs), nil
	case isAPIError(err, errCodeAtomicDisabled):
		p.refuseAtomic(err)
		return p.singles(ctx, msgs, ep, false)
	case !isDuplicate(err):
		return 0, err
	}
	n, err := p.singles(ctx, msgs, ep, true)
	if err != nil || n == len(msgs) {
		return n, err
	}
	if err := p.commit(ctx, msgs[n:], ep); !isDuplicate(err) {
		if err != nil {
			return n, err
		}
		return len(msgs), nil
	}
	m, err := p.singles(ctx, msgs[n:], ep, false)
	return n + m, err
}

// commit sends msgs as one atomic batch fenced on ep and waits for the
// commit's ack. Only the commit is a request: the server answers the
// others only on error, and a batch missing a message is refused whole
// at the commit (10176).
func (p *FencedBatch) commit(ctx context.Context, msgs []*nats.Msg, ep epochOf) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nc := p.js.Conn()
	id := rand.Text()
	for i, base := range msgs {
		m := cloneMsg(base)
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i == 0 {
			// Checked once for the whole batch: only the first message
			// may carry expectations that every message relies on.
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ep.seq, 10))
			m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, ep.subject)
		}
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return fmt.Errorf("send batch message %d of %d: %w", i+1, len(msgs), err)
			}
			continue
		}
		m.Header.Set(headerBatchCommit, "1")
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.ackTimeout)
		resp, err := nc.RequestMsgWithContext(actx, m)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
			return fmt.Errorf("commit batch of %d: %w", len(msgs), ErrAckTimeout)
		case err != nil:
			return fmt.Errorf("commit batch of %d: %w", len(msgs), err)
		}
		return checkBatchAck(resp.Data, id, len(msgs))
	}
	return nil
}

// checkBatchAck checks the commit's ack: the server's refusal, or the
// stream's ack for the whole batch.
func checkBatchAck(data []byte, id string, count int) error {
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
		Batch  string              `json:"batch"`
		Count  int                 `json:"count"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return fmt.Errorf("commit batch of %d: %w", count, jetstream.ErrInvalidJSAck)
	}
	switch {
	case ack.Error != nil:
		return fmt.Errorf("commit batch of %d: %w", count, ack.Error)
	case ack.Stream == "" || ack.Batch != id || ack.Count != count:
		return fmt.Errorf("commit batch of %d: ack for batch %q of %d: %w", count, ack.Batch, ack.Count, jetstream.ErrInvalidJSAck)
	}
	return nil
}

// singles publishes msgs one at a time, each fenced on ep, and returns how
// many were acknowledged; with untilFresh it stops after the first that
// the stream stored anew (not a duplicate).
func (p *FencedBatch) singles(ctx context.Context, msgs []*nats.Msg, ep epochOf, untilFresh bool) (int, error) {
	for i, base := range msgs {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.ackTimeout)
		ack, err := p.js.PublishMsg(actx, cloneMsg(base), jetstream.WithExpectLastSequenceForSubject(ep.seq, ep.subject))
		cancel()
		if err != nil {
			return i, err
		}
		if untilFresh && !ack.Duplicate {
			return i + 1, nil
		}
	}
	return len(msgs), nil
}

func cloneMsg(m *nats.Msg) *nats.Msg {
	return &nats.Msg{Subject: m.Subject, Header: maps.Clone(m.Header), Data: m.Data}
}

// refuseAtomic turns batches off for good (until a restart finds the
// stream allowing them again).
func (p *FencedBatch) refuseAtomic(err error) {
	if p.atomic.Swap(false) {
		p.log.Warn("the event stream refused an atomic batch: fenced events are published one at a time from now on, "+
			"one round trip each; allow atomic publish on the stream (allow_atomic) and restart to batch them", "err", err)
	}
}

// isDuplicate says whether err is a batch refused because one of its
// message ids is stored already or being stored.
func isDuplicate(err error) bool {
	return isAPIError(err, errCodeBatchDuplicate) || isAPIError(err, errCodeDuplicateInProc)
}

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == code
}

// PublishScan sends the summary unfenced; see JetStream.PublishScan.
func (p *FencedBatch) PublishScan(ctx context.Context, s watcher.ScanSummary) error {
	return p.scans.PublishScan(ctx, s)
}
