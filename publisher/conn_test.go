package publisher_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// TestConnectBeforeServerStarts checks that Connect to an address where no
// server listens yet returns a connection that connects once one starts.
func TestConnectBeforeServerStarts(t *testing.T) {
	t.Parallel()
	// Nobody listens on the port until the server starts on it: a port
	// below the ephemeral range, which no port-0 listener can take meanwhile.
	port := publishertest.RestartablePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nc, err := publisher.Connect(publisher.ConnConfig{URLs: []string{url}, ReconnectWait: 50 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatalf("Connect with no server up: %v; want a connection that retries", err)
	}
	t.Cleanup(nc.Close)
	connected := nc.StatusChanged(nats.CONNECTED)
	if nc.IsConnected() {
		t.Fatal("connected with no server up")
	}

	MustStartEmbedded(t, publisher.EmbeddedConfig{Port: port})
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatalf("not connected 15s after the server started; status %s", nc.Status())
	}
	js := MustJetStream(t, nc, 5*time.Second)
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	p := MustNewJetStream(t, js, publisher.JetStreamConfig{})
	events := publishertest.Events([]watcher.Target{prod}, 2, 10)
	if acked, err := p.Publish(t.Context(), events); acked != len(events) || err != nil {
		t.Fatalf("Publish after late connect = %d, %v", acked, err)
	}
}

// syncBuffer is a log sink the client's handler goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConnectAuth(t *testing.T) {
	t.Parallel()
	const (
		token    = "s3cret-server-token"
		user     = "relay"
		password = "s3cret-password"
	)
	tokenSrv := MustStartEmbedded(t, publisher.EmbeddedConfig{Token: token})
	userSrv := MustStartEmbedded(t, publisher.EmbeddedConfig{User: user, Password: password})
	hostOf := func(e *publisher.Embedded) string { return strings.TrimPrefix(e.ClientURL(), "nats://") }

	tests := []struct {
		name    string
		cfg     publisher.ConnConfig
		ok      bool
		secrets []string // must appear in no error and no log line
	}{
		{"RightToken", publisher.ConnConfig{URLs: []string{tokenSrv.ClientURL()}, Token: token}, true, []string{token}},
		{"WrongToken", publisher.ConnConfig{URLs: []string{tokenSrv.ClientURL()}, Token: "wrong-token-123"}, false, []string{token, "wrong-token-123"}},
		{"NoToken", publisher.ConnConfig{URLs: []string{tokenSrv.ClientURL()}}, false, []string{token}},
		{"WrongTokenInURL", publisher.ConnConfig{URLs: []string{"nats://wrong-token-456@" + hostOf(tokenSrv)}}, false, []string{"wrong-token-456"}},
		{"RightUserPassword", publisher.ConnConfig{URLs: []string{userSrv.ClientURL()}, User: user, Password: password}, true, []string{password}},
		{"WrongPassword", publisher.ConnConfig{URLs: []string{userSrv.ClientURL()}, User: user, Password: "wrong-pass-789"}, false, []string{password, "wrong-pass-789"}},
		{"WrongPasswordInURL", publisher.ConnConfig{URLs: []string{"nats://relay:wrong-pass-000@" + hostOf(userSrv)}}, false, []string{"wrong-pass-000"}},
		{"RightPasswordInURL", publisher.ConnConfig{URLs: []string{"nats://relay:" + password + "@" + hostOf(userSrv)}}, true, []string{password}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			nc, err := publisher.Connect(tt.cfg, logger)
			if nc != nil {
				defer nc.Close()
			}
			if tt.ok {
				if err != nil || !nc.IsConnected() {
					t.Fatalf("Connect = %v; want connected", err)
				}
				if err := nc.Publish("x", nil); err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatalf("Connect with bad credentials succeeded (status %s)", nc.Status())
				}
				t.Logf("Connect error: %v", err)
				if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
					t.Errorf("error %q does not say authorization failed", err)
				}
			}
			for _, s := range tt.secrets {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains secret %q", err, s)
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("logs contain secret %q:\n%s", s, logs.String())
				}
			}
		})
	}
}

func TestConnectConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  publisher.ConnConfig
		want string
	}{
		{"NoURL", publisher.ConnConfig{}, "no server url"},
		{"TokenAndUser", publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, Token: "tok-secret", User: "u", Password: "p"}, "exclusive"},
		{"PasswordWithoutUser", publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, Password: "pw-secret"}, "password without user"},
		{"CertWithoutKey", publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, CertFile: "c.pem"}, "go together"},
		{"MissingCAFile", publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, CAFile: "/nonexistent/ca.pem"}, "rootCA"},
		{"MissingSeedFile", publisher.ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, NKeySeedFile: "/nonexistent/user.nk"}, "nkey seed file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := publisher.Connect(tt.cfg, nil)
			if err == nil {
				nc.Close()
				t.Fatalf("Connect succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Connect error = %q, want it to contain %q", err, tt.want)
			}
			for _, s := range []string{"tok-secret", "pw-secret"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pass@host:4222", "nats://user:REDACTED@host:4222"},
		{"tls://tok@host:4222", "tls://REDACTED@host:4222"},
		{"user:pass@host:4222", "REDACTED@host:4222"},
		{"host:4222", "host:4222"},
		{"nats://a:b@h1:4222, nats://h2:4222", "nats://a:REDACTED@h1:4222,nats://h2:4222"},
		{"nats://us er:p%zz@host", "REDACTED@host"},
	}
	for _, tt := range tests {
		if got := publisher.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
