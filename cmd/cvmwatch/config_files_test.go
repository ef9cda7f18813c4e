package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check-config must refuse what run refuses of the files a config names
// (creds, nkey seed, TLS key, profile file), without connecting anywhere.
func TestCheckConfigChecksTheFilesRunUses(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "nats.creds")
	if err := os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(creds, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cvmwatch.yaml")
	text := "data_dir: " + filepath.Join(dir, "data") + "\naccounts:\n  - name: prod\n    regions: [ap-guangzhou]\n" +
		"nats:\n  url: nats://127.0.0.1:1\n  creds_file: " + creds + "\nhttp: {listen: \"127.0.0.1:0\"}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Run(t.Context(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	want := "nats.creds_file: " + creds + " holds a secret but its permissions 0644 let others read it"
	for _, cmd := range []string{"check-config", "run"} {
		code, stdout, stderr := run(cmd, "--config", cfg)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%s with a readable creds file: exit %d, stderr %q; want 1 and %q", cmd, code, stderr, want)
		}
		if strings.Contains(stdout, "is valid") {
			t.Errorf("%s called the config valid:\n%s", cmd, stdout)
		}
	}
	if code, _, stderr := run("check-config", "--config", cfg, "--allow-insecure-permissions"); code != 0 {
		t.Errorf("--allow-insecure-permissions: exit %d: %s", code, stderr)
	}
	if err := os.Chmod(creds, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run("check-config", "--config", cfg); code != 0 {
		t.Errorf("0600 creds file: exit %d: %s", code, stderr)
	}
	if err := os.Remove(creds); err != nil {
		t.Fatal(err)
	}
	// Missing here: check-config may run where the daemon's files are not
	// (systemd's ${CREDENTIALS_DIRECTORY} exists only inside the service),
	// so it warns and passes; run, where the file must be, refuses.
	wantWarning := "warning: nats.creds_file: cannot check it here (stat " + creds + ": no such file or directory)"
	if code, _, stderr := run("check-config", "--config", cfg); code != 0 || !strings.Contains(stderr, wantWarning) {
		t.Errorf("missing creds file: check-config exit %d, stderr %q; want 0 and %q", code, stderr, wantWarning)
	}
	if code, _, stderr := run("run", "--config", cfg); code != 1 || !strings.Contains(stderr, creds) {
		t.Errorf("missing creds file: run exit %d, stderr %q; want 1 naming the file", code, stderr)
	}
}

func TestConfigWarnsOfAFileItCannotRead(t *testing.T) {
	if os.Geteuid() == 0 {
		skipBecause(t, "root reads a file whatever its mode")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "client.key")
	if err := os.WriteFile(key, []byte("key"), 0o000); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cvmwatch.yaml")
	text := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\nnats:\n  tls: {cert_file: " + key + ", key_file: " + key + "}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(cfg, true)
	if err != nil || len(c.warnings) == 0 || !strings.Contains(strings.Join(c.warnings, "\n"), "nats.tls.key_file: cannot check it here (open "+key+": permission denied)") {
		t.Fatalf("LoadConfig = %v, %v; want a warning that nats.tls.key_file cannot be read here", c, err)
	}
}
