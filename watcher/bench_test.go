package watcher_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

const million = 1_000_000

var benchTarget = watcher.Target{Account: "bench", Region: "ap-guangzhou"}

// fleetScan lists n instances; every 100th is STOPPED when flip is true
// (1% changed against a scan with flip false).
func fleetScan(n int, flip bool, at time.Time) watcher.Scan {
	s := watcher.Scan{Target: benchTarget, Complete: true, Stats: watcher.ScanStats{Started: at, Duration: 25 * time.Second}}
	s.Observations = make([]watcher.Observation, n)
	for i := range n {
		st := watcher.StateRunning
		if flip && i%100 == 0 {
			st = watcher.StateStopped
		}
		s.Observations[i] = watcher.Observation{InstanceID: fmt.Sprintf("ins-%08d", i), State: st}
	}
	return s
}

// BenchmarkDiffCommit1MOnePercent measures one cycle's work for a
// 1,000,000-instance target in which 1% changed: the pure diff plus the
// bbolt commit of 10,000 records and 10,000 events. Goal: under 1 s.
//
// Run: go test -run '^$' -bench DiffCommit1M -benchtime 3x ./watcher/
func BenchmarkDiffCommit1MOnePercent(b *testing.B) {
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	snap := watcher.NewSnapshot()
	base := fleetScan(million, false, t0)
	c := watcher.Diff(snap, base, watcher.DefaultPolicy()).Resolve(watcher.LookupResult{}, t0, t0)
	if _, _, err := st.Commit(b.Context(), benchTarget, c); err != nil {
		b.Fatal(err)
	}
	snap.Apply(c, base)
	scans := []watcher.Scan{fleetScan(million, true, t0.Add(time.Minute)), fleetScan(million, false, t0.Add(2*time.Minute))}

	b.ResetTimer()
	var diffTime, commitTime time.Duration
	for i := range b.N {
		scan := scans[i%2]
		start := time.Now()
		d := watcher.Diff(snap, scan, watcher.DefaultPolicy())
		c := d.Resolve(watcher.LookupResult{}, start, start)
		diffTime += time.Since(start)
		if len(c.Events) != million/100 {
			b.Fatalf("diff found %d events, want %d", len(c.Events), million/100)
		}
		start = time.Now()
		if _, _, err := st.Commit(b.Context(), benchTarget, c); err != nil {
			b.Fatal(err)
		}
		commitTime += time.Since(start)
		snap.Apply(c, scan)
		b.StopTimer()
		if err := st.Acknowledge(b.Context(), benchTarget, ^uint64(0)); err != nil { // keep the outbox from growing
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(diffTime.Milliseconds())/float64(b.N), "diff_ms/op")
	b.ReportMetric(float64(commitTime.Milliseconds())/float64(b.N), "commit_ms/op")
}

// BenchmarkDiffCommit1MLoad measures a restart's LoadSnapshot of a
// 1,000,000-instance target from bbolt: the store's walk plus the
// snapshot's build.
//
// Run: go test -run '^$' -bench DiffCommit1MLoad -benchtime 3x ./watcher/
func BenchmarkDiffCommit1MLoad(b *testing.B) {
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	base := fleetScan(million, false, t0)
	c := watcher.Diff(watcher.NewSnapshot(), base, watcher.DefaultPolicy()).Resolve(watcher.LookupResult{}, t0, t0)
	if _, _, err := st.Commit(b.Context(), benchTarget, c); err != nil {
		b.Fatal(err)
	}
	base, c = watcher.Scan{}, watcher.Commit{}
	b.ResetTimer()
	for range b.N {
		snap, err := watcher.LoadSnapshot(func(fn func(watcher.Record) error) (watcher.ScanMeta, error) {
			return st.Load(b.Context(), benchTarget, fn)
		})
		if err != nil {
			b.Fatal(err)
		}
		if got, want := snap.Len(), million; got != want {
			b.Fatalf("loaded %d records, want %d", got, want)
		}
	}
}

// BenchmarkSnapshotHeapPerInstance measures the heap the loop keeps per
// tracked instance in a 1,000,000-instance target. Goal: 200 bytes or fewer.
//
// Run: go test -run '^$' -bench SnapshotHeap -benchtime 1x ./watcher/
func BenchmarkSnapshotHeapPerInstance(b *testing.B) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for range b.N {
		before := heapInUse()
		snap := baselineSnapshot(million, t0) // everything else it allocated is garbage now
		after := heapInUse()
		b.ReportMetric(float64(after-before)/million, "heap_bytes/instance")
		runtime.KeepAlive(snap)
	}
}

// baselineSnapshot returns the snapshot of an n-instance target after its
// baseline scan, as the loop holds it.
func baselineSnapshot(n int, at time.Time) *watcher.Snapshot {
	scan := fleetScan(n, false, at)
	snap := watcher.NewSnapshot()
	c := watcher.Diff(snap, scan, watcher.DefaultPolicy()).Resolve(watcher.LookupResult{}, at, at)
	snap.Apply(c, scan)
	return snap
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
