package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkOutboxEntrySize reads and acknowledges a relay batch of 16,384
// outbox entries of a state change (101 bytes each) and of the same entries
// grown by 460 bytes (an instance name), the size of the event's CloudEvent
// body: what storing each event pre-encoded would add to the relay's outbox
// reads and deletes (docs/BENCHMARKS.md, relay section).
//
// Run: go test -run '^$' -bench OutboxEntrySize -benchtime 5x -count 3 ./store/
func BenchmarkOutboxEntrySize(b *testing.B) {
	for _, pad := range []int{0, 460} {
		b.Run(fmt.Sprintf("pad=%d", pad), func(b *testing.B) {
			const n = 16384
			t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
			tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
			events := make([]watcher.Event, n)
			for i := range events {
				id := fmt.Sprintf("ins-%08d", i)
				events[i] = watcher.Event{ID: watcher.EventID(tg, id, 1, "RUNNING", "STOPPED"), Target: tg, InstanceID: id, From: "RUNNING", To: "STOPPED", Sequence: 1, ObservedAt: t0, PreviousObservedAt: t0}
				if pad > 0 {
					events[i].Instance = &watcher.Instance{Name: strings.Repeat("x", pad-12)}
				}
			}
			var read, ack time.Duration
			for b.Loop() {
				b.StopTimer()
				st, err := Open(filepath.Join(b.TempDir(), "o.db"), Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := st.Commit(b.Context(), tg, watcher.Commit{Events: events}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				s := time.Now()
				got, err := st.Outbox(b.Context(), tg, 0, n)
				if err != nil || len(got) != n {
					b.Fatal(err, len(got))
				}
				read += time.Since(s)
				s = time.Now()
				if err := st.Acknowledge(b.Context(), tg, got[n-1].Seq); err != nil {
					b.Fatal(err)
				}
				ack += time.Since(s)
				b.StopTimer()
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(read.Nanoseconds())/float64(b.N*n), "read_ns/entry")
			b.ReportMetric(float64(ack.Nanoseconds())/float64(b.N*n), "ack_ns/entry")
		})
	}
}
