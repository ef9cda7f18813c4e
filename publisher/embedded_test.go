package publisher_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
)

func TestEmbeddedPortInUse(t *testing.T) {
	t.Parallel()
	// The first server picks a free port and holds it for the whole test.
	first := MustStartEmbedded(t, publisher.EmbeddedConfig{Port: -1})
	u, err := url.Parse(first.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("ClientURL %q: %v", first.ClientURL(), err)
	}
	start := time.Now()
	e, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: port, StoreDir: t.TempDir()})
	if err == nil {
		e.Shutdown()
		t.Fatal("second server on the same port started")
	}
	if addr := "127.0.0.1:" + strconv.Itoa(port); !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name %s", err, addr)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %q does not say the address is in use", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s to report a port in use", d)
	}
}

func TestEmbeddedConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  publisher.EmbeddedConfig
		want string
	}{
		{"NoStoreDir", publisher.EmbeddedConfig{Port: -1}, "store dir is required"},
		{"TokenAndUser", publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir(), Token: "t", User: "u", Password: "p"}, "exclusive"},
		{"UserWithoutPassword", publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir(), User: "u"}, "go together"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := publisher.StartEmbedded(tt.cfg)
			if err == nil {
				e.Shutdown()
				t.Fatalf("StartEmbedded succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEmbeddedDefaultsAndShutdown(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{SyncAlways: true})
	if !strings.HasPrefix(e.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want loopback", e.ClientURL())
	}
	if got := e.Server().Name(); got != publisher.EmbeddedServerName {
		t.Fatalf("server name %q, want %q", got, publisher.EmbeddedServerName)
	}
	if !e.Server().JetStreamEnabled() {
		t.Fatal("JetStream not enabled")
	}
	if !e.Server().JetStreamConfig().SyncAlways {
		t.Fatal("SyncAlways not set")
	}
	e.Shutdown()
	e.Shutdown() // idempotent
	if e.Server().Running() {
		t.Fatal("still running after Shutdown")
	}
}
