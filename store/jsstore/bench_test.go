package jsstore_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/store/jsstore"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// The cost of moving the snapshot into the cluster, measured against bbolt
// in one run:
//
//	go test -run '^$' -bench . -benchtime 20x ./store/jsstore/
//
// Each op commits 1% of a 100,000-instance target (1,000 records changed
// and 1,000 events), as a scan with churn does; the outbox is acknowledged
// outside the timer.

const (
	benchInstances = 100_000
	benchChanges   = 1_000
)

var benchTgt = watcher.Target{Account: "bench", Region: "ap-guangzhou"}

func benchID(i int) string { return fmt.Sprintf("ins-%08x", uint32(i)*2654435761) }

func baseline() watcher.Commit {
	since := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	c := watcher.Commit{Meta: watcher.ScanMeta{Baselined: true, Scans: 1}}
	for i := range benchInstances {
		c.Put = append(c.Put, watcher.Record{InstanceID: benchID(i), State: watcher.StateRunning, Since: since, LastSeen: since})
	}
	return c
}

func change(round int) watcher.Commit {
	from, to := watcher.StateRunning, watcher.StateStopped
	if round%2 == 1 {
		from, to = to, from
	}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).Add(time.Duration(round) * time.Minute)
	c := watcher.Commit{Meta: watcher.ScanMeta{Baselined: true, LastScan: now, LastComplete: now, Scans: uint64(round + 2)}}
	step := benchInstances / benchChanges
	for j := range benchChanges {
		id, seq := benchID(j*step+round%step), uint64(round/step+1)
		c.Put = append(c.Put, watcher.Record{InstanceID: id, State: to, Sequence: seq, Since: now, LastSeen: now})
		c.Events = append(c.Events, watcher.Event{ID: watcher.EventID(benchTgt, id, seq, from, to), Target: benchTgt,
			InstanceID: id, From: from, To: to, Sequence: seq, ObservedAt: now, PreviousObservedAt: now.Add(-30 * time.Second)})
	}
	return c
}

func benchCommits(b *testing.B, s watcher.Store, baselined func()) {
	if _, _, err := s.Commit(b.Context(), benchTgt, baseline()); err != nil {
		b.Fatal(err)
	}
	baselined()
	round := 0
	for b.Loop() {
		b.StopTimer()
		c := change(round)
		round++
		b.StartTimer()
		_, last, err := s.Commit(b.Context(), benchTgt, c)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Acknowledge(b.Context(), benchTgt, last); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkCommitOnePercentOf100k(b *testing.B) {
	b.Run("bbolt", func(b *testing.B) {
		s, err := store.Open(filepath.Join(b.TempDir(), "cvmwatch.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchCommits(b, s, func() {})
	})
	journal := func(b *testing.B, js jetstream.JetStream, replicas int) {
		o := freshOptions(replicas)
		o.CompactEvery = jsstore.DefaultCompactEvery
		s := MustOpen(b, js, o)
		st, err := js.Stream(b.Context(), o.Stream)
		if err != nil {
			b.Fatal(err)
		}
		var base uint64
		benchCommits(b, s, func() {
			info, err := st.Info(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			base = info.State.Bytes
		})
		info, err := st.Info(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		// Commits and acknowledgements, until a compaction purges them.
		b.ReportMetric(float64(info.State.Bytes-base)/float64(b.N)/(1<<10), "journal_KiB/commit")
		// The view a replica keeps per owned target: load it afresh.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fresh := MustOpen(b, js, o)
		if _, err := fresh.Load(b.Context(), benchTgt, func(watcher.Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchInstances, "view_B/instance")
		runtime.KeepAlive(fresh)
	}
	b.Run("journal-embedded-R1-fsync", func(b *testing.B) { journal(b, MustJetStream(b, MustStartEmbedded(b)), 1) })
	b.Run("journal-cluster-R3", func(b *testing.B) {
		journal(b, MustJetStream(b, natstest.StartCluster(b, 3).URLs()), 3)
	})
	// The floor of a store keeping one KV key per instance and per outbox
	// entry: one CAS write per changed key, before any atomicity protocol.
	b.Run("kv-per-key-embedded-R1-fsync", func(b *testing.B) {
		js := MustJetStream(b, MustStartEmbedded(b))
		kv, err := js.CreateKeyValue(b.Context(), jetstream.KeyValueConfig{Bucket: "SNAP", Storage: jetstream.FileStorage})
		if err != nil {
			b.Fatal(err)
		}
		revs := map[string]uint64{}
		round := 0
		for b.Loop() {
			c := change(round)
			round++
			for _, r := range c.Put {
				val, _ := store.AppendRecord(nil, r)
				rev, err := kv.Update(b.Context(), "snap.bench.ap-guangzhou."+r.InstanceID, val, revs[r.InstanceID])
				if err != nil {
					b.Fatal(err)
				}
				revs[r.InstanceID] = rev
			}
			for i, e := range c.Events {
				val, _ := store.AppendEvent(nil, e)
				if _, err := kv.Create(b.Context(), fmt.Sprintf("out.bench.ap-guangzhou.%016x", round*benchChanges+i), val); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
