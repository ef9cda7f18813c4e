package publisher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
)

// With Epochs (HA), the event stream also captures <prefix>.epoch.>: a new
// stream is created with it, and a single-process stream of cvmwatch's
// gains it on the next start, its events kept.
func TestEnsureStreamEpochs(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	ctx := t.Context()
	subjects := func(name string) string {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(s.CachedInfo().Config.Subjects, ",")
	}

	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "NEW", Prefix: "n", Epochs: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := subjects("NEW"), "n.state.>,n.attribution.>,n.operation.>,n.epoch.>"; got != want {
		t.Fatalf("new HA stream subjects %q, want %q", got, want)
	}

	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "OLD", Prefix: "o"}); err != nil {
		t.Fatal(err)
	}
	if got, want := subjects("OLD"), "o.state.>,o.attribution.>,o.operation.>"; got != want {
		t.Fatalf("single-process stream subjects %q, want %q", got, want)
	}
	if _, err := js.Publish(ctx, "o.state.a.r.ins-1.ABSENT.RUNNING", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	st, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "OLD", Prefix: "o", Epochs: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subjects("OLD"), "o.state.>,o.attribution.>,o.operation.>,o.epoch.>"; got != want {
		t.Fatalf("upgraded stream subjects %q, want %q", got, want)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("upgraded stream holds %v messages (%v), want 1", info, err)
	}
	if got, want := publisher.EpochSubject("o", "acct", "ap-guangzhou"), "o.epoch.acct.ap-guangzhou"; got != want {
		t.Fatalf("EpochSubject = %q, want %q", got, want)
	}
}
