package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// TestEmbeddedServerRequiresTheConfiguredAuth: nats.token (or user and
// password) protect the embedded server too, not only the daemon's own
// connection. A client without them is refused; one with them reads the
// events the daemon published through the same server.
func TestEmbeddedServerRequiresTheConfiguredAuth(t *testing.T) {
	t.Parallel()
	sim, err := cvmsim.NewServer(cvmsim.Options{InstancesPerRegion: 10, Seed: 3, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	const token = "embedded-token-7f3a"
	for _, tc := range []struct {
		name string
		nats NATSConfig
		good []nats.Option
	}{
		{"token", NATSConfig{Listen: "127.0.0.1:0", Token: token}, []nats.Option{nats.Token(token)}},
		{"user and password", NATSConfig{Listen: "127.0.0.1:0", User: "watch", Password: token}, []nats.Option{nats.UserInfo("watch", token)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{
				DataDir: t.TempDir(),
				Accounts: []AccountConfig{{Name: "prod", Regions: []string{"ap-guangzhou"}, Endpoint: sim.URL(),
					Credentials: &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey}}},
				Poll:   PollConfig{Interval: Duration(time.Hour)},
				NATS:   tc.nats,
				HTTP:   HTTPConfig{Listen: "127.0.0.1:0"},
				Events: EventsConfig{AnnounceBaseline: true},
			}
			cfg.applyDefaults()
			if errs := cfg.validate(); len(errs) > 0 {
				t.Fatal(errs)
			}
			d, err := openDaemon(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatalf("openDaemon: %v", err)
			}
			defer d.Close()
			tg := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
			if _, err := d.watcher.ScanOnce(t.Context(), tg); err != nil {
				t.Fatal(err)
			}
			if n, err := d.watcher.RelayOnce(t.Context(), tg); err != nil || n != 10 {
				t.Fatalf("relay through the protected server = %d, %v; want the 10 announcements", n, err)
			}

			url := d.embedded.ClientURL()
			if nc, err := nats.Connect(url, nats.NoReconnect()); err == nil {
				nc.Close()
				t.Fatal("a client without credentials was let in")
			} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("refusal = %v, want an authorization error", err)
			}
			msgs, err := readStream(t.Context(), url, tc.good...)
			if err != nil {
				t.Fatalf("reading the stream with credentials: %v", err)
			}
			if len(msgs) != 10 {
				t.Fatalf("stream holds %d events, want 10", len(msgs))
			}
		})
	}
}
