package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkFreelistWrites measures what the small write transactions of a
// running daemon (a hot-set commit of one change and its event, the relay's
// delete of that event) write once the store is fragmented the way the
// first enrichment refresh leaves it, with bbolt's freelist synced (written
// by every transaction) and unsynced (rebuilt by walking the file at open),
// on the same file. It also reports the time to open the file afterwards.
//
// Run: go test -run '^$' -bench FreelistWrites -benchtime 200x ./store/
func BenchmarkFreelistWrites(b *testing.B) {
	n := 200_000
	if os.Getenv("CVMWATCH_BENCH_FREELIST_1M") != "" {
		n = 1_000_000
	}
	path := filepath.Join(b.TempDir(), "fragmented.db")
	start := time.Now()
	buildFragmented(b, path, n)
	b.Logf("built a %d-record store with every instance enriched in %v", n, time.Since(start).Round(time.Millisecond))

	for _, unsynced := range []bool{false, true} {
		b.Run(fmt.Sprintf("freelist_sync=%t", !unsynced), func(b *testing.B) {
			opts := Options{unsyncedFreelist: unsynced}
			s, err := Open(path, opts)
			if err != nil {
				b.Fatal(err)
			}
			stats := s.db.Stats()
			free, pending := stats.FreePageN, stats.PendingPageN
			var commitBytes, ackBytes int64
			at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
			i := 0
			for b.Loop() {
				i++
				id := benchID(i * 7919 % n)
				now := at.Add(time.Duration(i) * time.Second)
				c := watcher.Commit{
					Put: []watcher.Record{{InstanceID: id, State: watcher.StateStopped, Sequence: uint64(i), Since: now, LastSeen: now}},
					Events: []watcher.Event{{ID: fmt.Sprintf("e-%d", i), Target: benchTarget, InstanceID: id,
						From: watcher.StateRunning, To: watcher.StateStopped, Sequence: uint64(i), ObservedAt: now, PreviousObservedAt: now}},
					Meta: watcher.ScanMeta{Baselined: true, Scans: 1},
				}
				before := s.db.Stats()
				_, last, err := s.Commit(b.Context(), benchTarget, c)
				if err != nil {
					b.Fatal(err)
				}
				mid := s.db.Stats()
				if err := s.Acknowledge(b.Context(), benchTarget, last); err != nil {
					b.Fatal(err)
				}
				_, w := writes(s, before, mid)
				commitBytes += w
				_, w = writes(s, mid, s.db.Stats())
				ackBytes += w
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			openStart := time.Now()
			s, err = Open(path, opts)
			if err != nil {
				b.Fatal(err)
			}
			opened := time.Since(openStart)
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(free), "free_pages")
			b.ReportMetric(float64(pending), "pending_pages")
			b.ReportMetric(float64(commitBytes)/float64(b.N), "bytes/commit")
			b.ReportMetric(float64(ackBytes)/float64(b.N), "bytes/ack")
			b.ReportMetric(float64(opened.Microseconds())/1000, "open_ms")
		})
	}
}

// buildFragmented writes a store of n records of benchTarget, then the
// enrichment of every one in pages of 100 instances scattered over the key
// space, as the first refresh does (the API's order is not the key order).
func buildFragmented(b *testing.B, path string, n int) {
	b.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	since := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	const batch = 50_000
	for lo := 0; lo < n; lo += batch {
		c := watcher.Commit{Meta: watcher.ScanMeta{Baselined: true, Scans: 1}}
		for i := lo; i < lo+batch; i++ {
			c.Put = append(c.Put, watcher.Record{InstanceID: benchID(i), State: watcher.StateRunning, Since: since, LastSeen: since})
		}
		if _, _, err := s.Commit(b.Context(), benchTarget, c); err != nil {
			b.Fatal(err)
		}
	}
	page := make([]watcher.Enrichment, 0, 100)
	for i := range n {
		e := typicalEnrichment(i, since)
		e.InstanceID = benchID(i * 104729 % n) // 104729 is prime, so this visits every record once
		page = append(page, e)
		if len(page) == cap(page) {
			if err := s.PutEnrichments(b.Context(), benchTarget, page); err != nil {
				b.Fatal(err)
			}
			page = page[:0]
		}
	}
}
