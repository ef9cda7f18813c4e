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
// Fence gives from then on. Claiming fences every earlier claimant.
func ClaimEpoch(ctx context.Context, js jetstream.JetStream, subject, replica string, token uint64) (uint64, error) {
	msg := &nats.Msg{Subject: subject, Header: nats.Header{
		"Cvmwatch-Replica": []string{replica}, "Cvmwatch-Lease-Token": []string{strconv.FormatUint(token, 10)},
	}}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("claim epoch %s: %w", subject, err)
	}
	return ack.Sequence, nil
}
