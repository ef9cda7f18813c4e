package watcher_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkLoopHeapPerInstanceEnriched measures the heap a watcher keeps
// per instance of a 100,000-instance target after a baseline, a full
// enrichment refresh and a scan in which 1% changed (and were enriched),
// with enrichment off and on: the enrichment is on disk, so the two should
// match.
//
// Run: go test -run '^$' -bench LoopHeapPerInstance -benchtime 1x ./watcher/
func BenchmarkLoopHeapPerInstanceEnriched(b *testing.B) {
	const n = 100_000
	for _, enriched := range []bool{false, true} {
		b.Run(fmt.Sprintf("enrich=%v", enriched), func(b *testing.B) {
			for range b.N {
				f := newFleet(n)
				st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				ts := watcher.TargetSource{Target: enrTarget, Source: f}
				if enriched {
					ts.Enricher = f
				}
				before := heapInUse()
				w, err := watcher.New(watcher.Config{Store: st, Publisher: mempub.New(), Logger: quiet}, []watcher.TargetSource{ts})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.ScanOnce(b.Context(), enrTarget); err != nil {
					b.Fatal(err)
				}
				if err := w.RefreshOnce(b.Context(), enrTarget); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < n; i += 100 {
					f.set(fmt.Sprintf("ins-%08d", i), watcher.StateStopped, "StopInstances")
				}
				c, err := w.ScanOnce(b.Context(), enrTarget)
				if err != nil || len(c.Events) != n/100 || (enriched && c.Events[0].Instance == nil) {
					b.Fatalf("change scan: %d events, %v (enriched %v)", len(c.Events), err, enriched)
				}
				c = watcher.Commit{}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/n, "heap_bytes/instance")
				runtime.KeepAlive(w)
				runtime.KeepAlive(f)
				st.Close()
			}
		})
	}
}
