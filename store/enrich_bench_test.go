package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// BenchmarkEnrichmentBytesOnDisk stores the enrichment of 100,000
// instances (a typical one: a name, 3 tags, one private and one public
// address, a settled operation) through PutEnrichments in pages of 100, as
// the refresh does, and reports the file's growth per instance.
//
// Run: go test -run '^$' -bench EnrichmentBytesOnDisk -benchtime 1x ./store/
func BenchmarkEnrichmentBytesOnDisk(b *testing.B) {
	const n = 100_000
	tg := watcher.Target{Account: "bench", Region: "ap-guangzhou"}
	for range b.N {
		path := filepath.Join(b.TempDir(), "bench.db")
		st, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		before := fileSize(b, path)
		at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		page := make([]watcher.Enrichment, 0, 100)
		for i := range n {
			page = append(page, typicalEnrichment(i, at))
			if len(page) == cap(page) {
				if err := st.PutEnrichments(b.Context(), tg, page); err != nil {
					b.Fatal(err)
				}
				page = page[:0]
			}
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		val, _ := appendEnrichment(nil, typicalEnrichment(0, at))
		b.ReportMetric(float64(fileSize(b, path)-before)/n, "file_bytes/instance")
		b.ReportMetric(float64(len(val)+len("ins-00000000")), "value_bytes/instance")
	}
}

// typicalEnrichment is instance i's enrichment in the benchmark.
func typicalEnrichment(i int, at time.Time) watcher.Enrichment {
	return watcher.Enrichment{InstanceID: fmt.Sprintf("ins-%08d", i), State: watcher.StateRunning, FetchedAt: at,
		Instance: watcher.Instance{Name: fmt.Sprintf("web-%06d", i), Zone: "ap-guangzhou-3", InstanceType: "S5.MEDIUM4",
			PrivateIPs: []string{"10.0.12.34"}, PublicIPs: []string{"203.0.113.7"},
			Tags:       []watcher.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "web"}, {Key: "owner", Value: "ops-bot"}},
			ChargeType: "POSTPAID_BY_HOUR", CreatedTime: "2026-10-01T08:00:00Z", RestrictState: "NORMAL", IsolatedSource: "NOTISOLATED"},
		Operation: watcher.Operation{Name: "StartInstances", State: "SUCCESS", RequestID: "6e1c0b9a-7f4e-4a55-9d2c-0c1f6a3e2b11"}}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}
