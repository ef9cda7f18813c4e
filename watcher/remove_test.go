package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// RemoveTarget stops a target's loops before it returns, leaves the other
// targets scanning, and AddTarget starts it again. On synctest's clock:
// after synctest.Wait every goroutine is blocked, so a count that does not
// move across five intervals is a loop that no longer runs.
func TestRemoveTargetStopsItsLoopsAndAddTargetRestartsThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(false)
		a := watcher.Target{Account: "acct", Region: "region-a"}
		b := watcher.Target{Account: "acct", Region: "region-b"}
		w, err := watcher.New(watcher.Config{Store: store.NewMemory(), Publisher: mempub.New(), Logger: quiet, Interval: time.Second},
			[]watcher.TargetSource{{Target: a, Source: g.source(a)}, {Target: b, Source: g.source(b)}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := g.starts(); len(got[a]) != 2 || len(got[b]) != 2 {
			t.Fatalf("scans after 1s: %d and %d, want 2 each", len(got[a]), len(got[b]))
		}

		if !w.RemoveTarget(a) {
			t.Fatal("RemoveTarget of a watched target = false")
		}
		if w.RemoveTarget(watcher.Target{Account: "acct", Region: "nowhere"}) {
			t.Fatal("RemoveTarget of an unknown target = true")
		}
		if got, want := w.Targets(), []watcher.Target{b}; !slices.Equal(got, want) {
			t.Fatalf("Targets after removal = %v, want %v", got, want)
		}
		if st := w.Status(); len(st) != 1 || st[0].Target != b {
			t.Fatalf("Status after removal = %+v, want b only", st)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := g.starts(); len(got[a]) != 2 || len(got[b]) != 7 {
			t.Fatalf("scans 5s after a's removal: a %d (want 2, stopped), b %d (want 7)", len(got[a]), len(got[b]))
		}

		if err := w.AddTarget(watcher.TargetSource{Target: a, Source: g.source(a)}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := g.starts(); len(got[a]) != 3 {
			t.Fatalf("scans of a once added again = %d, want 3", len(got[a]))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
}

// reloadStore is a Memory store whose next Commit fails with failWith, and
// which counts Loads.
type reloadStore struct {
	*store.Memory
	mu       sync.Mutex
	loads    int
	failWith error
}

func (s *reloadStore) Load(ctx context.Context, t watcher.Target, fn func(watcher.Record) error) (watcher.ScanMeta, error) {
	s.mu.Lock()
	s.loads++
	s.mu.Unlock()
	return s.Memory.Load(ctx, t, fn)
}

func (s *reloadStore) Commit(ctx context.Context, t watcher.Target, c watcher.Commit) (uint64, uint64, error) {
	s.mu.Lock()
	err := s.failWith
	s.failWith = nil
	s.mu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	return s.Memory.Commit(ctx, t, c)
}

func (s *reloadStore) failNext(err error) (loads int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = err
	return s.loads
}

// A commit failing with ErrReload (a replicated store whose write was
// fenced or whose outcome is unknown) makes the next cycle load the
// snapshot from the store again; any other failure keeps the snapshot, as
// a failed bbolt commit applies nothing.
func TestCommitErrReloadReloadsTheSnapshot(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		loads int // Loads after the failed cycle and one more
	}{
		{"ErrReload reloads", fmt.Errorf("write journal: outcome unknown: %w", watcher.ErrReload), 2},
		{"another error keeps the snapshot", errors.New("disk full"), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(false)
			tg := watcher.Target{Account: "acct", Region: "region-a"}
			st := &reloadStore{Memory: store.NewMemory()}
			w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Logger: quiet},
				[]watcher.TargetSource{{Target: tg, Source: g.source(tg)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ScanOnce(t.Context(), tg); err != nil {
				t.Fatal(err)
			}
			if got := st.failNext(tt.err); got != 1 {
				t.Fatalf("loads after the first cycle = %d, want 1", got)
			}
			if _, err := w.ScanOnce(t.Context(), tg); !errors.Is(err, tt.err) {
				t.Fatalf("cycle with a failing commit = %v, want %v", err, tt.err)
			}
			if _, err := w.ScanOnce(t.Context(), tg); err != nil {
				t.Fatal(err)
			}
			if got := st.failNext(nil); got != tt.loads {
				t.Fatalf("loads = %d, want %d", got, tt.loads)
			}
			if w.Snapshot(tg) == nil {
				t.Fatal("no snapshot after a committed cycle")
			}
		})
	}
}
