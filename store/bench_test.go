package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// The 1M-record benchmarks share one store file, built on first use and
// removed when the test binary exits. Run them with
//
//	go test -run '^$' -bench . -benchtime 1x ./store/

const (
	benchRecords = 1_000_000
	benchChanges = 10_000 // 1% of the records, and as many events, per commit
)

var benchTarget = watcher.Target{Account: "bench", Region: "ap-guangzhou"}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		_ = os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

var fixture struct {
	once  sync.Once
	dir   string
	path  string
	err   error
	round int // commits made so far by BenchmarkCommitOnePercentOf1M
}

// benchID returns the instance ID of record i: "ins-" and 8 base-36 digits,
// scattered like real IDs (i*2654435761 mod 36^8 is a bijection, the
// multiplier being prime to 2 and 3).
func benchID(i int) string {
	const space = 2821109907456 // 36^8
	n := uint64(i) * 2654435761 % space
	s := strconv.FormatUint(n, 36)
	return "ins-" + "00000000"[len(s):] + s
}

// fixture1M returns the path of a closed store file holding benchRecords
// records in benchTarget.
func fixture1M(b *testing.B) string {
	b.Helper()
	fixture.once.Do(func() {
		start := time.Now()
		if fixture.dir, fixture.err = os.MkdirTemp("", "cvmwatch-bench-"); fixture.err != nil {
			return
		}
		fixture.path = filepath.Join(fixture.dir, "cvmwatch.db")
		s, err := Open(fixture.path, Options{})
		if err != nil {
			fixture.err = err
			return
		}
		defer s.Close()
		// Like a baseline: all records, in key order (the order a single
		// Commit writes them in), in batches of 100,000.
		ids := make([]string, benchRecords)
		for i := range ids {
			ids[i] = benchID(i)
		}
		slices.Sort(ids)
		since := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
		const batch = 100_000
		for lo := 0; lo < benchRecords; lo += batch {
			c := watcher.Commit{Put: make([]watcher.Record, 0, batch), Meta: watcher.ScanMeta{Baselined: true, Scans: 1}}
			for _, id := range ids[lo : lo+batch] {
				c.Put = append(c.Put, watcher.Record{InstanceID: id, State: watcher.StateRunning, Since: since, LastSeen: since})
			}
			if _, _, err := s.Commit(b.Context(), benchTarget, c); err != nil {
				fixture.err = err
				return
			}
		}
		fi, _ := os.Stat(fixture.path)
		b.Logf("built %d-record store (%d MB) in %v", benchRecords, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
	})
	if fixture.err != nil {
		b.Fatalf("build fixture: %v", fixture.err)
	}
	return fixture.path
}

// changeCommit returns round's commit: benchChanges records spread evenly
// over the whole key space, each flipping state, and one event for each.
func changeCommit(round int) watcher.Commit {
	from, to := watcher.StateRunning, watcher.StateStopped
	if round%2 == 1 {
		from, to = to, from
	}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).Add(time.Duration(round) * time.Minute)
	c := watcher.Commit{
		Put:    make([]watcher.Record, benchChanges),
		Events: make([]watcher.Event, benchChanges),
		Meta:   watcher.ScanMeta{Baselined: true, LastScan: now, LastComplete: now, Scans: uint64(round + 2)},
	}
	step := benchRecords / benchChanges
	for j := range benchChanges {
		id := benchID(j*step + round%step)
		seq := uint64(round/step + 1)
		c.Put[j] = watcher.Record{InstanceID: id, State: to, Sequence: seq, Since: now, LastSeen: now}
		c.Events[j] = watcher.Event{
			ID: fmt.Sprintf("%s-%d", id, seq), Target: benchTarget, InstanceID: id, From: from, To: to,
			Sequence: seq, ObservedAt: now, PreviousObservedAt: now.Add(-30 * time.Second),
		}
	}
	return c
}

// writes returns the pages and bytes written by the one write transaction
// between two db.Stats: every dirty page (the freelist included) is
// allocated before it is written, and the transaction then writes one meta
// page.
func writes(s *Bolt, before, after bbolt.Stats) (pages, bytes int64) {
	d := after.Sub(&before)
	return d.TxStats.GetWrite(), d.TxStats.GetPageAlloc() + int64(s.db.Info().PageSize)
}

func BenchmarkCommitOnePercentOf1M(b *testing.B) {
	s := mustOpen(b, fixture1M(b), Options{})
	var pages, written int64
	var ack time.Duration
	for b.Loop() {
		b.StopTimer()
		c := changeCommit(fixture.round)
		before := s.db.Stats()
		b.StartTimer()

		_, last, err := s.Commit(b.Context(), benchTarget, c)

		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		fixture.round++
		p, w := writes(s, before, s.db.Stats())
		pages, written = pages+p, written+w
		start := time.Now()
		if err := s.Acknowledge(b.Context(), benchTarget, last); err != nil {
			b.Fatal(err)
		}
		ack += time.Since(start)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(pages)/n, "pages_written/op")
	b.ReportMetric(float64(written)/n/(1<<20), "MB_written/op")
	b.ReportMetric(float64(ack.Nanoseconds())/n, "ack_ns/op")
}

func BenchmarkLoad1M(b *testing.B) {
	s := mustOpen(b, fixture1M(b), Options{})
	n := 0
	for b.Loop() {
		n = 0
		if _, err := s.Load(b.Context(), benchTarget, func(watcher.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != benchRecords {
		b.Fatalf("loaded %d records, want %d", n, benchRecords)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}

func BenchmarkNoChangeCommit(b *testing.B) {
	s := mustOpen(b, fixture1M(b), Options{})
	var pages, written int64
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		meta := watcher.ScanMeta{Baselined: true, Scans: uint64(i), LastScan: time.Now()}
		before := s.db.Stats()
		b.StartTimer()
		if _, _, err := s.Commit(b.Context(), benchTarget, watcher.Commit{Meta: meta}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p, w := writes(s, before, s.db.Stats())
		pages, written = pages+p, written+w
		b.StartTimer()
	}
	b.ReportMetric(float64(pages)/float64(b.N), "pages_written/op")
	b.ReportMetric(float64(written)/float64(b.N), "bytes_written/op")
}

func BenchmarkOpen1M(b *testing.B) {
	for _, check := range []bool{false, true} {
		b.Run(fmt.Sprintf("check=%t", check), func(b *testing.B) {
			path := fixture1M(b)
			for b.Loop() {
				s, err := Open(path, Options{Check: check})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
