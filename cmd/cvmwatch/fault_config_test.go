package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Bad command lines and bad configurations: a clear error naming the flag or
// key at fault, the right exit code, and never a secret echoed.

const secretMark = "s3cr3t-d0-n0t-echo"

func TestFaultBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	readable := func(p string) string {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	account := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\n"
	good := write("good.yaml", account+"    credentials: {secret_id: AKIDx, secret_key: "+secretMark+"}\nnats:\n  token: "+secretMark+"\n")
	t.Setenv("CVMWATCH_FAULT_KEY", secretMark)
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"run without config", []string{"run"}, -1, "config"},
		{"unknown flag", []string{"run", "--config", good, "--nope"}, 2, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, -1, "frobnicate"},
		{"missing file", []string{"run", "--config", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		{"bad value next to a secret", []string{"check-config", "--config", write("bad.yaml", account+
			"    credentials: {secret_id: AKIDx, secret_key: "+secretMark+"}\npoll:\n  interval: fast\n")}, 1, "poll.interval"},
		{"secret from the environment", []string{"check-config", "--config", write("env.yaml", account+
			"    credentials:\n      secret_id: ''\n      secret_key: ${CVMWATCH_FAULT_KEY}\n")}, 1, "secret_id"},
		{"secret of the wrong type", []string{"check-config", "--config", write("type.yaml", account+
			"    credentials: {secret_id: AKIDx, secret_key: ["+secretMark+"]}\n")}, 1, "secret_key"},
		{"misspelt secret key", []string{"check-config", "--config", write("typo.yaml", account+
			"    credentials: {secret_id: AKIDx, secret_kye: "+secretMark+"}\n")}, 1, "secret_kye"},
		{"password in the nats url", []string{"check-config", "--config", write("url.yaml", account+
			"nats:\n  url: nats://u:"+secretMark+"@127.0.0.1:4222\n  mode: carrier-pigeon\n")}, 1, "nats.mode"},
		// Valid, so check-config prints it: the effective config must not.
		{"password in a valid nats url", []string{"check-config", "--config", write("url-ok.yaml", account+
			"nats:\n  url: nats://u:"+secretMark+"@127.0.0.1:4222\n")}, 0, ""},
		{"token in a schemeless nats url without a port", []string{"check-config", "--config", write("url-token.yaml", account+
			"nats:\n  url: "+secretMark+"@natshost\n")}, 1, "nats.url"},
		{"password in the nats url of a readable file", []string{"check-config", "--config", readable(write("url-open.yaml", account+
			"nats:\n  url: nats://u:"+secretMark+"@127.0.0.1:4222\n"))}, 1, "a password in nats.url"},
		{"nats token with a bad prefix", []string{"check-config", "--config", write("token.yaml", account+
			"nats:\n  token: "+secretMark+"\n  subject_prefix: 'a>b'\n")}, 1, "subject_prefix"},
		{"verify final without truth", []string{"verify", "--server", "nats://127.0.0.1:1", "--final"}, 2, "--sim"},
		{"verify half a baseline", []string{"verify", "--server", "nats://127.0.0.1:1", "--baseline-start", "2026-11-27T00:00:00Z"}, 2, "--baseline-end"},
		{"verify bad time", []string{"verify", "--server", "nats://127.0.0.1:1", "--baseline-start", "noon", "--baseline-end", "night"}, 2, "--baseline-start"},
		{"good config", []string{"check-config", "--config", good}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tc.args, &stdout, &stderr)
			if tc.code >= 0 && code != tc.code || tc.code < 0 && code == 0 {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr does not name %q: %s", tc.want, stderr.String())
			}
			if out := stdout.String() + stderr.String(); strings.Contains(out, secretMark) {
				t.Errorf("a secret is echoed:\n%s", out)
			}
		})
	}
}

// FuzzParseConfig: whatever the bytes and the environment, ParseConfig
// never panics; a config it accepts is valid, and its effective form
// (what check-config prints) shows no secret.
func FuzzParseConfig(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "badconfigs", "*.yaml"))
	seeds = append(seeds, filepath.Join("..", "..", "configs", "cvmwatch.example.yaml"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, "AKIDfuzz")
		}
	}
	f.Add([]byte("accounts:\n  - name: ${A}\n    regions: [${A}]\n    credentials: {secret_id: ${A}, secret_key: ${A}}\n"), "x")
	f.Add([]byte("accounts: [{name: p, regions: [r]}]\nnats: {token: ${T}, password: ${T}, user: u}\n"), "tok")
	f.Add([]byte("accounts: [{name: p, regions: [r]}]\nnats: {url: 'nats://u:${T}@h:4222, ${T}@h2:4222,x:lit@h3:1'}\n"), "tok")
	f.Fuzz(func(t *testing.T, raw []byte, val string) {
		lookup := func(string) (string, bool) { return val, true }
		cfg, err := ParseConfig(raw, lookup)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if problems := cfg.validate(); len(problems) > 0 {
			t.Fatalf("accepted config has problems: %v", problems)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("effective config does not marshal: %v", err)
		}
		// The effective form must not depend on the secrets' values.
		other := *cfg
		other.Accounts = nil
		for _, a := range cfg.Accounts {
			if a.Credentials != nil {
				c := *a.Credentials
				c.SecretKey = mask2(c.SecretKey)
				a.Credentials = &c
			}
			other.Accounts = append(other.Accounts, a)
		}
		other.NATS.Token, other.NATS.Password = mask2(cfg.NATS.Token), mask2(cfg.NATS.Password)
		other.NATS.URL = mask2URLs(cfg.NATS.URL)
		out2, err := yaml.Marshal(&other)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("the effective config shows a secret:\n%s\nvs\n%s", out, out2)
		}
	})
}

// mask2URLs replaces the password (or token) of each nats.url server by
// another non-empty value.
func mask2URLs(s string) string {
	urls := splitURLs(s)
	for i, u := range urls {
		prefix, info, rest, ok := cutUserInfo(u)
		if !ok || urlSecret(u) == "" {
			continue
		}
		if user, _, hasPass := strings.Cut(info, ":"); hasPass {
			info = user + ":another-value"
		} else {
			info = "another-value"
		}
		urls[i] = prefix + info + "@" + rest
	}
	return strings.Join(urls, ",")
}

// mask2 replaces a non-empty secret by another non-empty value.
func mask2(s Secret) Secret {
	if s == "" {
		return ""
	}
	return "another-value"
}
