package cvm_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// Distinctive secret values: no error, log line or formatted value may
// contain them.
const (
	secretKeyValue = "SECRETKEY-zq9xv7w3"
	secretIDValue  = "AKIDexplicit0001"
)

// syncBuffer is a bytes.Buffer that a logger may write from several
// goroutines.
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

// newTestLogger returns a debug-level logger writing text into the buffer.
func newTestLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// assertNoSecret fails if s contains any of the secrets.
func assertNoSecret(tb testing.TB, what, s string, secrets ...string) {
	tb.Helper()
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			tb.Fatalf("%s contains a secret: %q", what, s)
		}
	}
}

// mustNewCredential calls NewCredential and closes the result when the test
// ends.
func mustNewCredential(tb testing.TB, cfg cvm.CredentialConfig) cvm.Credential {
	tb.Helper()
	c, err := cvm.NewCredential(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("NewCredential: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// writeFile writes a file with the given permissions (chmod, so the umask
// does not interfere).
func writeFile(tb testing.TB, path, content string, perm os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		tb.Fatal(err)
	}
}

func TestExplicitKeys(t *testing.T) {
	log, logs := newTestLogger()
	c := mustNewCredential(t, cvm.CredentialConfig{SecretID: secretIDValue, SecretKey: secretKeyValue, CVMRole: "ignored", Logger: log})
	id, key, token := c.GetCredential()
	if id != secretIDValue || key != secretKeyValue || token != "" {
		t.Fatalf("GetCredential = %q, %q, %q", id, key, token)
	}
	if c.GetSecretId() != id || c.GetSecretKey() != key || c.GetToken() != "" {
		t.Fatal("single getters disagree with GetCredential")
	}
	if got, want := c.Source(), "explicit keys"; got != want {
		t.Fatalf("Source = %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "ignored") {
		t.Errorf("no warning about the ignored CVM role: %s", logs)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecret(t, format, fmt.Sprintf(format, c), secretKeyValue)
	}
	log.Info("credential", slog.Any("cred", c))
	slog.New(slog.NewJSONHandler(logs, nil)).Info("credential", slog.Any("cred", c))
	assertNoSecret(t, "log", logs.String(), secretKeyValue)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestCredentialConfigErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFile(t, good, "[default]\nsecret_id = AKIDprofile\nsecret_key = "+secretKeyValue+"\n", 0o600)
	tests := []struct {
		name string
		cfg  cvm.CredentialConfig
		want string
	}{
		{"no source", cvm.CredentialConfig{}, "no credential source"},
		{"id without key", cvm.CredentialConfig{SecretID: "AKIDx"}, "both secret id and secret key"},
		{"key without id", cvm.CredentialConfig{SecretKey: secretKeyValue}, "both secret id and secret key"},
		{"assume role without base", cvm.CredentialConfig{AssumeRole: &cvm.AssumeRoleConfig{RoleARN: "qcs::cam::uin/1:roleName/r"}}, "no credential source"},
		{"assume role without arn", cvm.CredentialConfig{ProfileFile: good, AssumeRole: &cvm.AssumeRoleConfig{}}, "role arn is empty"},
		{"assume role short duration", cvm.CredentialConfig{SecretID: "AKIDx", SecretKey: secretKeyValue,
			AssumeRole: &cvm.AssumeRoleConfig{RoleARN: "qcs::cam::uin/1:roleName/r", Duration: 60e9}}, "duration 1m0s"},
		{"assume role bad session", cvm.CredentialConfig{SecretID: "AKIDx", SecretKey: secretKeyValue,
			AssumeRole: &cvm.AssumeRoleConfig{RoleARN: "qcs::cam::uin/1:roleName/r", SessionName: "a b"}}, "session name"},
		{"assume role bad endpoint", cvm.CredentialConfig{SecretID: "AKIDx", SecretKey: secretKeyValue, STSEndpoint: "ftp://x",
			AssumeRole: &cvm.AssumeRoleConfig{RoleARN: "qcs::cam::uin/1:roleName/r"}}, "scheme must be http or https"},
		{"bad role name", cvm.CredentialConfig{CVMRole: "a/b"}, `cvm role "a/b": not a valid CAM role name`},
		{"bad metadata endpoint", cvm.CredentialConfig{CVMRole: "r", MetadataEndpoint: "metadata"}, "want http://host[:port]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cvm.NewCredential(t.Context(), tt.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("NewCredential succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tt.want)
			}
			assertNoSecret(t, "error", err.Error(), secretKeyValue)
		})
	}
}

func TestProfileFile(t *testing.T) {
	dir := t.TempDir()
	const content = "# Tencent Cloud credentials\n" +
		"[default]\nsecret_id = AKIDdefault\nsecret_key = " + secretKeyValue + "\n\n" +
		"; production\n[prod]\nSECRET_ID=\"AKIDprod\"\nsecret_key= 'prod-" + secretKeyValue + "' \n" +
		"[partial]\nsecret_id = AKIDpartial\nsecret_key =\n"
	path := filepath.Join(dir, "credentials")
	writeFile(t, path, content, 0o600)

	t.Run("default profile", func(t *testing.T) {
		c := mustNewCredential(t, cvm.CredentialConfig{ProfileFile: path})
		if id, key, _ := c.GetCredential(); id != "AKIDdefault" || key != secretKeyValue {
			t.Fatalf("GetCredential = %q, %q", id, key)
		}
		if got, want := c.Source(), "profile file "+path+" [default]"; got != want {
			t.Fatalf("Source = %q, want %q", got, want)
		}
	})
	t.Run("named profile with quotes", func(t *testing.T) {
		c := mustNewCredential(t, cvm.CredentialConfig{ProfileFile: path, Profile: "prod"})
		if id, key, _ := c.GetCredential(); id != "AKIDprod" || key != "prod-"+secretKeyValue {
			t.Fatalf("GetCredential = %q, %q", id, key)
		}
	})
	t.Run("explicit keys win", func(t *testing.T) {
		c := mustNewCredential(t, cvm.CredentialConfig{SecretID: "AKIDx", SecretKey: "k", ProfileFile: path})
		if got := c.Source(); got != "explicit keys" {
			t.Fatalf("Source = %q", got)
		}
	})

	insecure := filepath.Join(dir, "insecure")
	writeFile(t, insecure, content, 0o644)
	malformed := filepath.Join(dir, "malformed")
	writeFile(t, malformed, "[default]\nsecret_id = AKIDx\n"+secretKeyValue+"\n", 0o600)
	orphan := filepath.Join(dir, "orphan")
	writeFile(t, orphan, "secret_key = "+secretKeyValue+"\n", 0o600)
	errTests := []struct {
		name string
		cfg  cvm.CredentialConfig
		want string
	}{
		{"missing key", cvm.CredentialConfig{ProfileFile: path, Profile: "partial"}, "profile file " + path + " [partial]: missing secret_key"},
		{"missing section", cvm.CredentialConfig{ProfileFile: path, Profile: "staging"}, "no section [staging]"},
		{"missing file", cvm.CredentialConfig{ProfileFile: filepath.Join(dir, "nope")}, "no such file"},
		{"bad permissions", cvm.CredentialConfig{ProfileFile: insecure}, "permissions 0644 are too open"},
		{"malformed line", cvm.CredentialConfig{ProfileFile: malformed}, malformed + ": line 3: want key = value"},
		{"key outside a section", cvm.CredentialConfig{ProfileFile: orphan}, "line 1: key outside a [section]"},
		{"directory", cvm.CredentialConfig{ProfileFile: dir}, "not a regular file"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cvm.NewCredential(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			assertNoSecret(t, "error", err.Error(), secretKeyValue)
		})
	}

	t.Run("insecure file allowed", func(t *testing.T) {
		c := mustNewCredential(t, cvm.CredentialConfig{ProfileFile: insecure, AllowInsecureFile: true})
		if got := c.GetSecretId(); got != "AKIDdefault" {
			t.Fatalf("GetSecretId = %q", got)
		}
	})
}
