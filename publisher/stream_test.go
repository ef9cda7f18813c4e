package publisher_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
)

func TestEnsureStream(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	ctx := t.Context()

	config := func(t *testing.T, name string) jetstream.StreamConfig {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}

	t.Run("CreatesWithDefaults", func(t *testing.T) {
		for range 2 { // idempotent
			if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{}); err != nil {
				t.Fatal(err)
			}
		}
		c := config(t, "CVMWATCH")
		if got, want := strings.Join(c.Subjects, ","), "cvm.state.>,cvm.attribution.>,cvm.operation.>"; got != want {
			t.Errorf("subjects %q, want %q", got, want)
		}
		if got, want := c.Metadata[publisher.MetadataLayout], "events/v2"; got != want {
			t.Errorf("metadata %s = %q, want %q", publisher.MetadataLayout, got, want)
		}
		sc := config(t, "CVMWATCH_SCANS")
		if got, want := strings.Join(sc.Subjects, ","), "cvm.scan.>"; got != want {
			t.Errorf("scans stream subjects %q, want %q", got, want)
		}
		if sc.MaxMsgsPerSubject != 100 || sc.MaxAge != 24*time.Hour || !sc.AllowDirect || sc.Storage != jetstream.FileStorage {
			t.Errorf("scans stream: %d per subject, max age %s, direct %v, storage %s; want 100, 24h, true, file",
				sc.MaxMsgsPerSubject, sc.MaxAge, sc.AllowDirect, sc.Storage)
		}
		if got, want := c.Duplicates, 10*time.Minute; got != want {
			t.Errorf("duplicates window %s, want %s", got, want)
		}
		if c.Storage != jetstream.FileStorage || c.MaxAge != 0 || c.Replicas != 1 {
			t.Errorf("storage %s, max age %s, replicas %d; want file, 0 (forever), 1", c.Storage, c.MaxAge, c.Replicas)
		}
	})

	t.Run("AppliesWhatIsAsked", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "UPD", Subjects: []string{"upd.>"}, Storage: jetstream.FileStorage,
			Duplicates: 2 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		cfg := publisher.StreamConfig{Name: "UPD", Prefix: "upd", MaxAge: time.Hour, Duplicates: 5 * time.Minute}
		if _, err := publisher.EnsureStream(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
		if c := config(t, "UPD"); c.MaxAge != time.Hour || c.Duplicates != 5*time.Minute {
			t.Errorf("max age %s, duplicates %s; want 1h, 5m (set, and a too short window raised)", c.MaxAge, c.Duplicates)
		}
	})

	t.Run("KeepsAnOperatorsLimits", func(t *testing.T) {
		// An operator made the stream: a longer duplicates window and a
		// max age that the configuration leaves unset are theirs to keep.
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPS", Subjects: []string{"ops.>"}, Storage: jetstream.FileStorage,
			MaxAge: 720 * time.Hour, Duplicates: 20 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "OPS", Prefix: "ops"}); err != nil {
			t.Fatal(err)
		}
		if c := config(t, "OPS"); c.MaxAge != 720*time.Hour || c.Duplicates != 20*time.Minute || c.Replicas != 1 {
			t.Errorf("max age %s, duplicates %s, replicas %d; want the operator's 720h, 20m, 1", c.MaxAge, c.Duplicates, c.Replicas)
		}
	})

	t.Run("RefusedUpdateIsAWarning", func(t *testing.T) {
		// A single server cannot hold 3 replicas: the update is refused,
		// and the stream is used as it is, with a warning saying so.
		if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "R1", Prefix: "r1"}); err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		s, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "R1", Prefix: "r1", Replicas: 3, Logger: log})
		if err != nil || s == nil {
			t.Fatalf("EnsureStream with a refused update = %v, %v; want the stream as it is", s, err)
		}
		if !strings.Contains(logs.String(), "could not be changed") || !strings.Contains(logs.String(), "want_replicas=3") {
			t.Errorf("no warning about the refused update: %s", logs.String())
		}
		if c := config(t, "R1"); c.Replicas != 1 {
			t.Errorf("replicas %d, want 1", c.Replicas)
		}
	})

	t.Run("KeepsExtraSubjects", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EXTRA", Subjects: []string{"extra.>", "more.>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "EXTRA", Prefix: "extra"}); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(config(t, "EXTRA").Subjects, ","), "extra.>,more.>"; got != want {
			t.Errorf("subjects %q, want %q", got, want)
		}
	})

	t.Run("RefusesStreamWithOtherSubjects", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TAKEN", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		_, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "TAKEN", Prefix: "taken"})
		if err == nil || !strings.Contains(err.Error(), "orders.>") || !strings.Contains(err.Error(), "taken.state.>") {
			t.Fatalf("EnsureStream on a stream with other subjects: %v; want an error naming both", err)
		}
		if got := strings.Join(config(t, "TAKEN").Subjects, ","); got != "orders.>" {
			t.Fatalf("subjects changed to %q", got)
		}
	})

	t.Run("RefusesMemoryStream", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MEM", Subjects: []string{"mem.>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "MEM", Prefix: "mem"}); err == nil || !strings.Contains(err.Error(), "storage") {
			t.Fatalf("EnsureStream on a memory stream: %v; want a storage error", err)
		}
	})

	t.Run("OverlappingStreamIsAnError", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GRAB", Subjects: []string{"grab.>"}}); err != nil {
			t.Fatal(err)
		}
		_, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Name: "MINE", Prefix: "grab"})
		if err == nil || !strings.Contains(err.Error(), "MINE") {
			t.Fatalf("EnsureStream with subjects another stream captures: %v; want an error", err)
		}
		t.Logf("overlap error: %v", err)
	})

	t.Run("InvalidConfig", func(t *testing.T) {
		for _, tt := range []struct {
			cfg  publisher.StreamConfig
			want string
		}{
			{publisher.StreamConfig{Name: "BAD1", MaxAge: time.Minute}, "longer than max age"},
			{publisher.StreamConfig{Name: "BAD2", MaxAge: -time.Second}, "negative"},
			{publisher.StreamConfig{Name: "BAD3", Duplicates: -time.Second}, "negative"},
			{publisher.StreamConfig{Name: "BAD4", Prefix: "a.*"}, "not a safe subject token"},
		} {
			if _, err := publisher.EnsureStream(ctx, js, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EnsureStream(%+v) = %v, want an error containing %q", tt.cfg, err, tt.want)
			}
		}
	})
}
