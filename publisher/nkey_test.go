package publisher_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/cvmwatch/cvmwatch/publisher"
)

// TestConnectNKey authenticates with an nkey seed file. The embedded server
// has no nkey option, so this test runs nats-server directly.
func TestConnectNKey(t *testing.T) {
	t.Parallel()
	allowed, allowedSeed, allowedFile := newUserSeedFile(t, "allowed.nk")
	_, otherSeed, otherFile := newUserSeedFile(t, "other.nk")

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Nkeys: []*server.NkeyUser{{Nkey: allowed}}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	nc, err := publisher.Connect(publisher.ConnConfig{URLs: []string{srv.ClientURL()}, NKeySeedFile: allowedFile}, logger)
	if err != nil {
		t.Fatalf("Connect with the allowed seed: %v", err)
	}
	nc.Close()

	nc, err = publisher.Connect(publisher.ConnConfig{URLs: []string{srv.ClientURL()}, NKeySeedFile: otherFile}, logger)
	if err == nil {
		nc.Close()
		t.Fatal("Connect with an unknown nkey succeeded")
	}
	for _, seed := range []string{allowedSeed, otherSeed} {
		if strings.Contains(err.Error(), seed) || strings.Contains(logs.String(), seed) {
			t.Fatalf("a seed leaked: error %q, logs:\n%s", err, logs.String())
		}
	}
}

// newUserSeedFile creates a user nkey and writes its seed to a file.
func newUserSeedFile(t *testing.T, name string) (public, seed, path string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	s, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	public, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, append(bytes.Clone(s), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return public, string(s), path
}
