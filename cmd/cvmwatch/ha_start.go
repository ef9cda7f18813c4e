package main

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// haStartTry bounds one attempt of an ha start-up step; haStartTimeout
// bounds all of them.
const haStartTry = 5 * time.Second

// haRetry runs step, each attempt with its own haStartTry deadline, until
// it succeeds, fails for a reason waiting cannot cure, or ctx ends. While
// a cluster elects a stream's leader (a node just killed or restarted),
// JetStream API calls time out or find no responder instead of failing,
// and a later attempt is answered: a replica started then must not exit
// after one unanswered call (found by the HA chaos soak).
func haRetry(ctx context.Context, step func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, haStartTry)
		err := step(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transientNATS(err) {
			return err
		}
		if watcher.Sleep(ctx, watcher.Backoff(attempt, 200*time.Millisecond, 2*time.Second)) != nil {
			return err
		}
	}
}

// transientNATS reports whether err is a request that went unanswered.
func transientNATS(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}
