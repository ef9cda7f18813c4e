package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExampleConfigParses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "cvmwatch.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw, env(map[string]string{"PROD_SECRET_ID": "AKIDexample", "PROD_SECRET_KEY": "s3cr3t-example",
		"CVMSIM_SECRET_ID": "AKIDcvmsim", "CVMSIM_SECRET_KEY": "cvmsim-secret-key"}))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if len(cfg.literalSecrets) != 0 {
		t.Errorf("the example writes secrets literally: %v", cfg.literalSecrets)
	}
	if got, want := len(cfg.Accounts), 3; got != want {
		t.Fatalf("accounts = %d, want %d", got, want)
	}
	if a := cfg.Accounts[2]; !a.Regions.All() || a.Credentials == nil || a.Credentials.AssumeRole == nil {
		t.Errorf("the example's regions: all / assume_role account did not parse: %+v", a)
	}
	if cr := cfg.Accounts[0].Credentials; cr == nil {
		t.Errorf("accounts[0].credentials did not parse")
	} else if got, want := cr.SecretKey.Reveal(), "s3cr3t-example"; got != want {
		t.Errorf("expanded secret = %q, want %q", got, want)
	}
	if got, want := cfg.Poll.Interval.D(), 30*time.Second; got != want {
		t.Errorf("poll.interval = %v, want %v", got, want)
	}
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte("accounts:\n  - name: prod\n    regions: [ap-guangzhou]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != defaultDataDir || cfg.Poll.RateLimit != defaultRateLimit || cfg.NATS.SubjectPrefix != "cvm" ||
		cfg.NATS.Listen != "127.0.0.1:4222" || cfg.HTTP.Listen != "127.0.0.1:9090" || cfg.NATS.Mode != "jetstream" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if got, want := len(cfg.Accounts), 1; got != want {
		t.Fatalf("accounts = %d, want %d", got, want)
	}
	if cfg.Accounts[0].Credentials != nil {
		t.Error("absent credentials must stay absent (SDK default chain)")
	}
}

func TestEnvExpansionCannotInjectStructure(t *testing.T) {
	raw := "accounts:\n  - name: ${NAME}\n    regions: [ap-guangzhou]\npoll:\n  rate_limit: ${RATE}\n"
	cfg, err := ParseConfig([]byte(raw), env(map[string]string{"NAME": "prod", "RATE": "12.5"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].Name != "prod" || cfg.Poll.RateLimit != 12.5 {
		t.Errorf("expansion wrong: %+v", cfg)
	}
	_, err = ParseConfig([]byte(raw), env(map[string]string{"NAME": "prod\n  evil: 1", "RATE": "1"}))
	if err == nil || !strings.Contains(err.Error(), "accounts[0].name") {
		t.Errorf("a multi-line value did not stay one (invalid) name: %v", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("hunter2-distinctive")
	cfg := CredentialsConfig{SecretID: "id", SecretKey: s}
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s, "credentials", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s, "credentials", cfg)
	for _, out := range []string{s.String(), s.GoString(), fmtAll(s), fmtAll(cfg), string(asJSON), logged.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
}

// TestBadConfigs runs every file in testdata/badconfigs: each holds a
// config and, in its leading comment lines, the exact error lines expected.
// They are loaded as check-config and run load them, files named included:
// ${FIXTURES} is a directory of files whose modes cannot come from a
// checkout (see badConfigFixtures), also expanded in the expected lines.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "badconfigs", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	fixtures := badConfigFixtures(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(raw), "\n") {
				if msg, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, strings.ReplaceAll(msg, "${FIXTURES}", fixtures))
				}
			}
			if len(want) == 0 {
				t.Fatal("no '# want:' lines")
			}
			_, err = loadConfig(f, raw, env(map[string]string{"SET": "x", "ZERO": "0s", "FIXTURES": fixtures}), false)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			// The error is "config FILE: N problem(s):" then one indented
			// line per problem. A "want: N problem(s)" line is matched at
			// the end of the first line; every other one must be a whole
			// problem line, and every problem line must be wanted.
			got := err.Error()
			lines := strings.Split(got, "\n")
			problems := map[string]bool{}
			for _, l := range lines[1:] {
				problems[strings.TrimSpace(l)] = true
			}
			for _, w := range want {
				switch {
				case strings.HasSuffix(w, "problem(s)"):
					if !strings.HasSuffix(lines[0], ": "+w+":") {
						t.Errorf("error does not start with %q; got:\n%s", w, got)
					}
				case len(lines) == 1: // a single error, not a list
					if !strings.HasSuffix(got, w) {
						t.Errorf("error is not %q; got:\n%s", w, got)
					}
				case !problems[w]:
					t.Errorf("no problem line is exactly %q; got:\n%s", w, got)
				}
				delete(problems, w)
			}
			for p := range problems {
				if p != "" {
					t.Errorf("unexpected problem line %q", p)
				}
			}
			if strings.Contains(got, "TOPSECRET") {
				t.Errorf("error echoes a secret:\n%s", got)
			}
		})
	}
}

// badConfigFixtures makes the files the bad configs name: secret-open
// (0644), secret-private (0600) and a directory, dir. "missing" is not
// there.
func badConfigFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"secret-open": 0o644, "secret-private": 0o600} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("not a real secret\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fmtAll(v any) string {
	return strings.Join([]string{sprintf("%v", v), sprintf("%+v", v), sprintf("%#v", v), sprintf("%s", v)}, " ")
}

func TestConfigWithLiteralSecretsMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	literal := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\n    credentials:\n      secret_id: AKIDx\n      secret_key: TOPSECRET-literal\n"
	fromEnv := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\n    credentials:\n      secret_id: AKIDx\n      secret_key: ${KEY}\n"
	t.Setenv("KEY", "TOPSECRET-env")
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := write("open.yaml", literal, 0o644)
	_, err := LoadConfig(open, false)
	if err == nil || !strings.Contains(err.Error(), "accounts[0].credentials.secret_key") || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("readable config with a literal secret: %v", err)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("the refusal echoes the secret: %v", err)
	}
	if _, err := LoadConfig(open, true); err != nil {
		t.Fatalf("--allow-insecure-permissions did not relax the check: %v", err)
	}
	if _, err := LoadConfig(write("private.yaml", literal, 0o600), false); err != nil {
		t.Fatalf("0600 config refused: %v", err)
	}
	cfg, err := LoadConfig(write("env.yaml", fromEnv, 0o644), false)
	if err != nil {
		t.Fatalf("readable config whose secrets come from the environment refused: %v", err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].Credentials == nil || cfg.Accounts[0].Credentials.SecretKey.Reveal() != "TOPSECRET-env" {
		t.Fatalf("secret not expanded: %+v", cfg.Accounts)
	}
}

func TestMinimalExampleConfigParses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "cvmwatch.minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw, env(nil))
	if err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].Credentials != nil || cfg.NATS.URL != "" {
		t.Errorf("minimal config = %+v", cfg)
	}
}

// TestEmbeddedNATSBeyondLoopbackWithAuth: listening beyond loopback is
// fine once the embedded server requires a token or a user and password.
func TestEmbeddedNATSBeyondLoopbackWithAuth(t *testing.T) {
	base := "accounts:\n  - name: prod\n    regions: [ap-guangzhou]\nnats:\n  listen: 0.0.0.0:4222\n"
	for _, auth := range []string{"  token: ${T}\n", "  user: watch\n  password: ${T}\n"} {
		if _, err := ParseConfig([]byte(base+auth), func(string) (string, bool) { return "s3cret", true }); err != nil {
			t.Errorf("nats.listen 0.0.0.0 with %q: %v", auth, err)
		}
	}
	if _, err := ParseConfig([]byte(base+"  url: nats://10.0.0.1:4222\n"), func(string) (string, bool) { return "", false }); err != nil {
		t.Errorf("nats.listen is ignored with nats.url, yet: %v", err)
	}
}
