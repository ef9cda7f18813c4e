package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// Both stores refuse the same commits and targets, and a refused commit
// changes nothing.
func TestStoresRefuseInvalidCommits(t *testing.T) {
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	ok := watcher.Record{InstanceID: "ins-1", State: watcher.StateRunning}
	tooOld := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		target watcher.Target
		c      watcher.Commit
		want   string
	}{
		{"EmptyAccount", watcher.Target{Region: "r"}, watcher.Commit{}, "target account"},
		{"RegionWithDot", watcher.Target{Account: "a", Region: "ap.x"}, watcher.Commit{}, "target region"},
		{"EmptyInstanceID", tgt, watcher.Commit{Put: []watcher.Record{ok, {State: watcher.StateRunning}}}, "empty instance id"},
		{"HugeInstanceID", tgt, watcher.Commit{Put: []watcher.Record{{InstanceID: strings.Repeat("x", 2000)}}}, "more than 1024"},
		{"EmptyDelete", tgt, watcher.Commit{Delete: []string{""}}, "empty instance id"},
		{"PutAndDelete", tgt, watcher.Commit{Put: []watcher.Record{ok}, Delete: []string{"ins-1"}}, "both put and deleted"},
		{"RecordTimeOutOfRange", tgt, watcher.Commit{Put: []watcher.Record{{InstanceID: "ins-2", Since: tooOld}}}, "storable range"},
		{"EventTimeOutOfRange", tgt, watcher.Commit{Events: []watcher.Event{{ID: "e", ObservedAt: tooOld}}}, "storable range"},
		{"MetaTimeOutOfRange", tgt, watcher.Commit{Meta: watcher.ScanMeta{LastComplete: tooOld}}, "storable range"},
	} {
		for name, s := range map[string]watcher.Store{"Bolt": MustOpenBolt(t), "Memory": store.NewMemory()} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				_, _, err := s.Commit(t.Context(), tc.target, tc.c)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Commit = %v, want an error containing %q", err, tc.want)
				}
				if ts, err := s.Targets(t.Context()); err != nil || len(ts) != 0 {
					t.Fatalf("Targets() after a refused commit = %v, %v; want none", ts, err)
				}
			})
		}
	}
}

func TestStoresRefuseInvalidTargetsOnReads(t *testing.T) {
	bad := watcher.Target{Account: "a b", Region: "r"}
	for name, s := range map[string]watcher.Store{"Bolt": MustOpenBolt(t), "Memory": store.NewMemory()} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			_, lerr := s.Load(ctx, bad, func(watcher.Record) error { return nil })
			_, oerr := s.Outbox(ctx, bad, 0, 1)
			aerr := s.Acknowledge(ctx, bad, 1)
			_, _, serr := s.OutboxStats(ctx, bad)
			for _, err := range []error{lerr, oerr, aerr, serr} {
				if !errors.Is(err, watcher.ErrInvalidToken) {
					t.Errorf("call with target %q = %v, want ErrInvalidToken", bad, err)
				}
			}
		})
	}
}
