package store_test

import (
	"errors"
	"testing"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/store/storetest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) watcher.Store { return store.NewMemory() },
	})
}

func TestMemoryFailNextCommitAppliesNothing(t *testing.T) {
	m := store.NewMemory()
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	c := watcher.Commit{
		Put:    []watcher.Record{{InstanceID: "ins-1", State: watcher.StateRunning}},
		Events: []watcher.Event{{ID: "e1", Target: tgt, InstanceID: "ins-1", From: watcher.Absent, To: watcher.StateRunning, Sequence: 1}},
		Meta:   watcher.ScanMeta{Scans: 1},
	}
	errDisk := errors.New("disk full")
	m.FailNextCommit(errDisk)
	if _, _, err := m.Commit(t.Context(), tgt, c); !errors.Is(err, errDisk) {
		t.Fatalf("armed Commit = %v, want %v", err, errDisk)
	}
	if ts, err := m.Targets(t.Context()); err != nil || len(ts) != 0 {
		t.Fatalf("Targets() after a failed commit = %v, %v; want none", ts, err)
	}
	if depth, _, err := m.OutboxStats(t.Context(), tgt); err != nil || depth != 0 {
		t.Fatalf("OutboxStats after a failed commit = %d, %v; want 0", depth, err)
	}
	first, last, err := m.Commit(t.Context(), tgt, c)
	if err != nil || first != 1 || last != 1 {
		t.Fatalf("Commit after the failure = %d, %d, %v; want 1, 1, nil (the failure used no sequence)", first, last, err)
	}
}
