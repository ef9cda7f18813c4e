package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A start-up step whose calls go unanswered (a cluster electing a leader)
// is tried again until it succeeds; one refused for a reason waiting cannot
// cure fails at once; one never answered fails when the start-up deadline
// ends.
func TestHARetryRetriesOnlyUnansweredCalls(t *testing.T) {
	calls := 0
	err := haRetry(t.Context(), func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return fmt.Errorf("journal stream: %w", context.DeadlineExceeded)
		}
		if calls == 2 {
			return fmt.Errorf("register: %w", jetstream.ErrNoStreamResponse)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("unanswered twice, then answered: err %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	refused := errors.New("journal stream captures the wrong subjects")
	if err := haRetry(t.Context(), func(ctx context.Context) error { calls++; return refused }); !errors.Is(err, refused) || calls != 1 {
		t.Fatalf("refused: err %v after %d calls, want the refusal after 1", err, calls)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	calls = 0
	err = haRetry(ctx, func(ctx context.Context) error { calls++; <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Fatalf("never answered: err %v after %d calls, want a deadline error after 1", err, calls)
	}
}
