package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nats.url is a plain string that may hold secrets in its servers' user
// info: check-config must redact them, and the config file's permission
// check must count them.

func TestCheckConfigRedactsEveryNATSURLSecret(t *testing.T) {
	const (
		literalPass = "lit3ral-pass-4c1d"
		token       = "t0ken-in-url-8e2f"
		envPass     = "env-pass-9a7b"
	)
	t.Setenv("CVMWATCH_TEST_NATS_PASS", envPass)
	path := filepath.Join(t.TempDir(), "cvmwatch.yaml")
	text := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\nnats:\n" +
		"  url: \"nats://alice:" + literalPass + "@h1:4222, bob:${CVMWATCH_TEST_NATS_PASS}@h2:4222,tls://" + token + "@h3:4222,nats://h4:4222\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), []string{"check-config", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("check-config exited %d: %s", code, stderr.String())
	}
	out := stdout.String() + stderr.String()
	for _, s := range []string{literalPass, token, envPass} {
		if strings.Contains(out, s) {
			t.Errorf("check-config printed %q:\n%s", s, out)
		}
	}
	want := "nats://alice:" + redacted + "@h1:4222,bob:" + redacted + "@h2:4222,tls://" + redacted + "@h3:4222,nats://h4:4222"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("effective nats.url is not %s:\n%s", want, stdout.String())
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://alice:pw@host:4222", "nats://alice:" + redacted + "@host:4222"},
		{"nats://tok@host:4222", "nats://" + redacted + "@host:4222"},
		{"alice:pw@host:4222", "alice:" + redacted + "@host:4222"},
		{"tok@host", redacted + "@host"},
		{"nats://alice:p@ss@host:4222", "nats://alice:" + redacted + "@host:4222"},
		{"nats://host:4222", "nats://host:4222"},
		{"nats://alice:@host:4222", "nats://alice:@host:4222"}, // nothing secret to hide
		{"host:4222", "host:4222"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfigWithNATSURLPasswordMustBePrivate(t *testing.T) {
	const secret = "TOPSECRET-url-pass"
	t.Setenv("NATS_USER", "alice")
	t.Setenv("NATS_PASS", secret)
	t.Setenv("NATS_URL", "nats://alice:"+secret+"@host:4222")
	dir := t.TempDir()
	write := func(name, url string) string {
		p := filepath.Join(dir, name)
		text := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\nnats:\n  url: " + url + "\n"
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, url string }{
		{"password", "nats://alice:" + secret + "@host:4222"},
		{"token", "nats://" + secret + "@host:4222"},
		{"password of the second server", "nats://h1:4222,alice:" + secret + "@h2:4222"},
		{"password next to a variable", "nats://${NATS_USER}:" + secret + "@host:4222"},
	} {
		t.Run(tc.name+" written in a readable file is refused", func(t *testing.T) {
			p := write("literal.yaml", tc.url)
			_, err := LoadConfig(p, false)
			if err == nil || !strings.Contains(err.Error(), "a password in nats.url") || !strings.Contains(err.Error(), "0644") {
				t.Fatalf("LoadConfig = %v, want a refusal naming nats.url and 0644", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the refusal echoes the secret: %v", err)
			}
			if _, err := LoadConfig(p, true); err != nil {
				t.Fatalf("--allow-insecure-permissions did not relax the check: %v", err)
			}
		})
	}
	for _, tc := range []struct{ name, url string }{
		{"password", "nats://alice:${NATS_PASS}@host:4222"},
		{"whole url", "${NATS_URL}"},
		{"no user info", "nats://host:4222"},
	} {
		t.Run(tc.name+" from the environment is accepted", func(t *testing.T) {
			if _, err := LoadConfig(write("env.yaml", tc.url), false); err != nil {
				t.Fatalf("LoadConfig = %v, want the readable config accepted", err)
			}
		})
	}
}
