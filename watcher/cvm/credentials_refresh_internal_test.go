package cvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestRefreshAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		life, want time.Duration
	}{
		{time.Hour, 48 * time.Minute},             // 80% is earlier than 5 min before
		{12 * time.Hour, 576 * time.Minute},       // 80% of the STS maximum
		{30 * time.Minute, 24 * time.Minute},      // 80% (6 min before)
		{25 * time.Minute, 20 * time.Minute},      // both rules agree
		{20 * time.Minute, 15 * time.Minute},      // 5 min before is earlier than 80%
		{15 * time.Minute, 10 * time.Minute},      // the STS minimum
		{8 * time.Minute, 4 * time.Minute},        // never before half the lifetime
		{4 * time.Second, 2 * time.Second},        // short test lifetimes: half
		{1500 * time.Millisecond, minRefreshWait}, // no hot loop
		{0, minRefreshWait},                       // degenerate
		{-time.Second, minRefreshWait},            // degenerate
	}
	for _, tt := range tests {
		k := keys{issued: t0, expires: t0.Add(tt.life)}
		if got := refreshAt(k).Sub(t0); got != tt.want {
			t.Errorf("lifetime %v: refresh after %v, want %v", tt.life, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 60: 30 * time.Second} {
		for range 20 {
			if d := retryDelay(attempt); d < base/2 || d > base {
				t.Fatalf("retryDelay(%d) = %v, want within [%v, %v]", attempt, d, base/2, base)
			}
		}
	}
}

// fakeSTS hands out numbered 1h keys, or fails while failing > 0.
type fakeSTS struct {
	mu      sync.Mutex
	calls   int
	failing int
	life    time.Duration
}

func (f *fakeSTS) fetch(ctx context.Context) (keys, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failing > 0 {
		f.failing--
		return keys{}, errors.New("sts unavailable")
	}
	n := f.calls
	return keys{id: fmt.Sprintf("id-%d", n), key: fmt.Sprintf("key-%d", n), token: fmt.Sprintf("token-%d", n),
		expires: time.Now().Add(f.life)}, nil
}

func (f *fakeSTS) set(failing int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = failing
}

func (f *fakeSTS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRefresherTiming runs the refresher on synctest's fake clock: 1h keys
// are replaced at 48 minutes; failed refreshes are retried with backoff
// while the old keys stay in use; Close stops it.
func TestRefresherTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{life: time.Hour}
		var logs lockedBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		c, err := startRefreshing(t.Context(), "fake", f.fetch, 5*time.Second, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		check := func(when string, wantID string, wantCalls int) {
			t.Helper()
			synctest.Wait()
			id, key, token := c.GetCredential()
			if id != wantID || strings.TrimPrefix(key, "key-") != strings.TrimPrefix(id, "id-") || strings.TrimPrefix(token, "token-") != strings.TrimPrefix(id, "id-") {
				t.Fatalf("%s (%v): GetCredential = %s %s %s, want %s", when, time.Since(start), id, key, token, wantID)
			}
			if got := f.count(); got != wantCalls {
				t.Fatalf("%s (%v): %d fetches, want %d", when, time.Since(start), got, wantCalls)
			}
		}
		check("start", "id-1", 1)
		time.Sleep(48*time.Minute - time.Second)
		check("just before 80%", "id-1", 1)
		time.Sleep(2 * time.Second)
		check("just after 80%", "id-2", 2)

		// The next refresh is due 48 min after the second keys arrived; it
		// fails three times, then succeeds after about 1+2+4 s of backoff.
		f.set(3)
		time.Sleep(48*time.Minute - time.Second + 100*time.Millisecond)
		check("first failure", "id-2", 3)
		time.Sleep(20 * time.Second)
		check("after backoff", "id-6", 6)
		if !strings.Contains(logs.String(), "credential refresh failed; the current keys are still valid") {
			t.Errorf("failure not logged as a warning: %s", logs.String())
		}

		// A refresh that keeps failing past expiry is logged as an error
		// and keeps the old keys.
		f.set(1000)
		time.Sleep(70 * time.Minute)
		synctest.Wait()
		check("expired", "id-6", f.count())
		if !strings.Contains(logs.String(), "current keys have expired") {
			t.Errorf("expiry not logged: %s", logs.String())
		}
		f.set(0)
		time.Sleep(31 * time.Second)
		synctest.Wait()
		calls := f.count()
		if id := c.GetSecretId(); id != fmt.Sprintf("id-%d", calls) {
			t.Fatalf("after recovery GetSecretId = %s, want id-%d", id, calls)
		}

		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		if got := f.count(); got != calls {
			t.Fatalf("%d fetches after Close", got-calls)
		}
	})
}

// TestRefresherFirstFetchTimeout: a fetch that never answers is cut off
// after the HTTP timeout, and the error names the source.
func TestRefresherFirstFetchTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context) (keys, error) {
			<-ctx.Done()
			return keys{}, ctx.Err()
		}
		start := time.Now()
		_, err := startRefreshing(t.Context(), "hanging source", hang, 5*time.Second, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.HasPrefix(err.Error(), "hanging source: ") {
			t.Fatalf("error = %v", err)
		}
		if took := time.Since(start); took != 5*time.Second {
			t.Fatalf("first fetch gave up after %v, want 5s", took)
		}
	})
}
