package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Journal message headers.
const (
	headerPart   = "Cvmwatch-Part"   // "i/n" on the parts of a write cut in n
	headerWriter = "Cvmwatch-Writer" // Options.Writer
)

// read reads t's journal from its first message and makes it t's view.
func (s *Store) read(ctx context.Context, t *target) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	v := newView()
	last, err := s.stream.GetLastMsgForSubject(ctx, t.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		t.v, t.last, t.writes, t.bytes, t.snapBytes = v, 0, 0, 0, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal %s: %w", t.subject, err)
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{t.subject}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("read journal %s: %w", t.subject, err)
	}
	var (
		parts        []byte
		want, of     int // next part expected, of how many; 0: none pending
		writes, size int
		snapBytes    int
	)
	it, err := cons.Messages(jetstream.PullMaxMessages(512), jetstream.PullExpiry(time.Second))
	if err != nil {
		return fmt.Errorf("read journal %s: %w", t.subject, err)
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	seq := uint64(0)
	for seq < last.Sequence {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("read journal %s at %d of %d: %w", t.subject, seq, last.Sequence, errors.Join(ctx.Err(), err))
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read journal %s: %w", t.subject, err)
		}
		seq = meta.Sequence.Stream
		body := m.Data()
		if p := m.Headers().Get(headerPart); p != "" {
			i, k, err := parsePart(p)
			if err != nil {
				return fmt.Errorf("%w: %s message %d: %v", ErrCorrupt, t.subject, seq, err)
			}
			if i == 1 || i != want || k != of {
				parts, want, of = nil, 1, k // a write cut short before: ignored
			}
			if i != want {
				continue // the rest of a write whose start was purged or lost
			}
			parts = append(parts, body...)
			if want++; i < k {
				continue
			}
			body, parts, want, of = parts, nil, 0, 0
		} else {
			parts, want, of = nil, 0, 0
		}
		if len(body) > 0 && body[0] == opReset {
			writes, size, snapBytes = 0, 0, len(body)
		} else {
			writes, size = writes+1, size+len(body)
		}
		if err := v.apply(body); err != nil {
			return fmt.Errorf("read journal %s message %d: %w", t.subject, seq, err)
		}
	}
	t.v, t.last, t.writes, t.bytes, t.snapBytes = v, seq, writes, size, snapBytes
	return nil
}

func parsePart(h string) (i, n int, err error) {
	a, b, ok := strings.Cut(h, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || i < 1 || i > n {
		return 0, 0, fmt.Errorf("bad %s header %q", headerPart, h)
	}
	return i, n, nil
}

// view returns t's view, reading the journal if it has none.
func (s *Store) view(ctx context.Context, t *target) (*view, error) {
	if t.v == nil {
		if err := s.read(ctx, t); err != nil {
			return nil, err
		}
	}
	return t.v, nil
}

// write appends body to t's journal, in parts if it is large, each part
// expecting the journal's last sequence to be the one before it. On
// success t.last is the last part's sequence; the caller then applies body
// to t.v. On failure t.v is dropped (nil) and the error says whether the
// journal was written by someone else (ErrFenced) and whether the outcome
// is unknown (ErrReload); a failure before anything was sent is neither.
func (s *Store) write(ctx context.Context, t *target, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	n := max(1, (len(body)+s.maxChunk-1)/s.maxChunk)
	last := t.last
	for i := range n {
		msg := &nats.Msg{Subject: t.subject, Header: nats.Header{headerWriter: []string{s.opts.Writer}}}
		msg.Data = body[min(i*s.maxChunk, len(body)):min((i+1)*s.maxChunk, len(body))]
		if n > 1 {
			msg.Header.Set(headerPart, fmt.Sprintf("%d/%d", i+1, n))
		}
		ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(s.opts.Stream), jetstream.WithExpectLastSequencePerSubject(last))
		if err != nil {
			t.v = nil
			if wrongLastSequence(err) {
				t.needLoad = true
				return fmt.Errorf("write journal %s: %w: %w (%w)", t.subject, ErrFenced, ErrReload, err)
			}
			if i > 0 || !refusedUnsent(err) {
				t.needLoad = true
				return fmt.Errorf("write journal %s: outcome unknown: %w (%w)", t.subject, ErrReload, err)
			}
			return fmt.Errorf("write journal %s: %w", t.subject, err)
		}
		last = ack.Sequence
	}
	t.last = last
	t.writes++
	t.bytes += len(body)
	return nil
}

// refusedUnsent reports whether a failed first publish is known not to be
// stored: the server answered with an error (other than a wrong last
// sequence, handled before), or the request was never sent.
func refusedUnsent(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubject)
}

// compact rewrites t's journal as one snapshot when enough has been
// written since the last one, then purges the messages before it. It runs
// after a successful write; its failure is not the caller's: a failed
// snapshot leaves the journal valid (a snapshot cut short is ignored), and
// a failed purge only delays the space being freed.
func (s *Store) compact(ctx context.Context, t *target) {
	if t.writes < s.opts.CompactEvery || t.bytes < t.snapBytes {
		return
	}
	body := t.v.encodeSnapshot()
	first := t.last + 1
	needLoad := t.needLoad
	if err := s.write(ctx, t, body); err != nil {
		// The state did not change, so the caller's snapshot still matches
		// unless someone else wrote.
		if !errors.Is(err, ErrFenced) {
			t.needLoad = needLoad
		}
		return
	}
	t.writes, t.bytes, t.snapBytes = 0, 0, len(body)
	// The snapshot's first part is at or after first (nothing else can
	// write in between): every message before it is folded in.
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(t.subject), jetstream.WithPurgeSequence(first))
}
