package publisher

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoEpoch is wrapped by the error of a fenced publish whose subject has
// no epoch: this replica does not hold the target.
var ErrNoEpoch = errors.New("no epoch held for the subject")

// Fence returns, for a message's subject, the epoch subject of the stream
// and the sequence of this replica's epoch message on it (ClaimEpoch); ok
// false refuses the publish. It is called for every publish, from any
// goroutine.
type Fence func(subject string) (epochSubject string, seq uint64, ok bool)

// Fenced returns js whose PublishMsg and PublishMsgAsync add to every
// message Nats-Expected-Last-Subject-Sequence(-Subject): the server stores
// it only while the epoch subject's last message is still this replica's
// epoch. A replica that lost a target without noticing is refused (error
// code 10071, or 10164 on replicated streams) as soon as the new owner has
// claimed its epoch; nothing else changes. Needs nats-server 2.11 or
// later. Use it under NewJetStream.
func Fenced(js jetstream.JetStream, fence Fence) jetstream.JetStream {
	return &fencedJS{JetStream: js, fence: fence}
}

type fencedJS struct {
	jetstream.JetStream
	fence Fence
}

func (f *fencedJS) opts(msg *nats.Msg, opts []jetstream.PublishOpt) ([]jetstream.PublishOpt, error) {
	subj, seq, ok := f.fence(msg.Subject)
	if !ok {
		return nil, fmt.Errorf("publish %s: %w", msg.Subject, ErrNoEpoch)
	}
	return append(opts, jetstream.WithExpectLastSequenceForSubject(seq, subj)), nil
}

func (f *fencedJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	opts, err := f.opts(msg, opts)
	if err != nil {
		return nil, err
	}
	return f.JetStream.PublishMsg(ctx, msg, opts...)
}

func (f *fencedJS) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	opts, err := f.opts(msg, opts)
	if err != nil {
		return nil, err
	}
	return f.JetStream.PublishMsgAsync(msg, opts...)
}

// ClaimEpoch publishes an epoch message on subject, which the event stream
// must capture, for a replica that has just taken a target (token: its
// lease's fencing token), and returns its stream sequence: the seq its
// Fence gives from then on. Claiming fences every earlier claimant. Claims
// are ordered by token: a claim whose token is lower than the one holding
// the epoch is refused (ErrStaleClaim) and fences nobody, and a claim
// retried after an unknown outcome returns the sequence it was stored at.
func ClaimEpoch(ctx context.Context, js jetstream.JetStream, subject, replica string, token uint64) (uint64, error) {
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return 0, fmt.Errorf("claim epoch %s: %w", subject, err)
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("claim epoch %s: %w", subject, err)
	}
	tok := strconv.FormatUint(token, 10)
	for {
		// The claims on a subject are ordered by their lease tokens: a
		// replica that lost the lease before its claim went out (a slow
		// claim during an election) must not fence the owner that took the
		// lease after it, which would be refused for good.
		var last uint64
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return 0, fmt.Errorf("claim epoch %s: %w", subject, err)
		default:
			held, _ := strconv.ParseUint(m.Header.Get(headerLeaseToken), 10, 64)
			switch {
			case held > token:
				return 0, fmt.Errorf("claim epoch %s with lease token %d: %w (token %d holds it)", subject, token, ErrStaleClaim, held)
			case held == token && m.Header.Get(headerReplica) == replica:
				return m.Sequence, nil // an earlier attempt of this claim was stored
			}
			last = m.Sequence
		}
		msg := &nats.Msg{Subject: subject, Header: nats.Header{headerReplica: []string{replica}, headerLeaseToken: []string{tok}}}
		ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last))
		if err == nil {
			return ack.Sequence, nil
		}
		if !isAPIError(err, jetstream.JSErrCodeStreamWrongLastSequence) && !isAPIError(err, jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, fmt.Errorf("claim epoch %s: %w", subject, err)
		}
		// Another claim landed since the read: judge it.
	}
}

// Headers of an epoch message.
const (
	headerReplica    = "Cvmwatch-Replica"
	headerLeaseToken = "Cvmwatch-Lease-Token"
)

// ErrStaleClaim is wrapped by the error of a claim whose lease token is
// older than the one that holds the epoch: the lease was taken by another
// replica after this one's.
var ErrStaleClaim = errors.New("a later lease holds the epoch")
