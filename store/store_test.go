package store_test

import (
	"path/filepath"
	"testing"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/store/storetest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// MustOpenBolt opens a store file in a fresh temporary directory; the store
// is closed when the test ends.
func MustOpenBolt(tb testing.TB) *store.Bolt {
	tb.Helper()
	return mustOpenBoltAt(tb, filepath.Join(tb.TempDir(), "data", "cvmwatch.db"))
}

func mustOpenBoltAt(tb testing.TB, path string) *store.Bolt {
	tb.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		tb.Fatalf("Open(%s) = %v", path, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) watcher.Store { return MustOpenBolt(t) },
		Reopen: func(t *testing.T, s watcher.Store) watcher.Store {
			b := s.(*store.Bolt)
			if err := b.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			return mustOpenBoltAt(t, b.Path())
		},
	})
}
