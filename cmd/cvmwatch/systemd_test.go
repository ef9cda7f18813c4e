package main

import (
	"path"
	"strings"
	"testing"
)

// systemdUnit is a unit file as key -> values (a key may repeat), per section.
type systemdUnit map[string]map[string][]string

func parseSystemdUnit(t *testing.T, text string) systemdUnit {
	t.Helper()
	u := systemdUnit{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %d %q: not KEY=VALUE in a section", i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the single value of a key, failing if it is absent or repeated.
func (u systemdUnit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: %d values, want 1", section, key, len(v))
	}
	return v[0]
}

func TestSystemdUnitAgreesWithTheBinary(t *testing.T) {
	t.Parallel()
	u := parseSystemdUnit(t, string(readRepoFile(t, "configs/cvmwatch.service")))

	exec := strings.Fields(u.one(t, "Service", "ExecStart"))
	if exec[0] != "/usr/local/bin/cvmwatch" {
		t.Errorf("ExecStart runs %s, want /usr/local/bin/cvmwatch", exec[0])
	}
	c := parseCommandLine(t, "ExecStart", exec[1:])
	if c.Name() != "run" {
		t.Fatalf("ExecStart runs %s, want run", c.CommandPath())
	}
	configPath := flagString(t, c, "config")
	if configPath != dockerConfigPath {
		t.Errorf("ExecStart --config %s; the docs and the image use %s", configPath, dockerConfigPath)
	}

	// The config installed there is the example; its data_dir must be the
	// state directory, the only writable place under ProtectSystem=strict.
	cfg, err := ParseConfig(readRepoFile(t, "configs/cvmwatch.example.yaml"), func(string) (string, bool) { return "from-env", true })
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	state := u.one(t, "Service", "StateDirectory")
	if got, want := cfg.DataDir, path.Join("/var/lib", state); got != want {
		t.Errorf("example data_dir %s, but StateDirectory=%s gives %s", got, state, want)
	}
	if defaultDataDir != path.Join("/var/lib", state) {
		t.Errorf("default data_dir %s is not the state directory /var/lib/%s", defaultDataDir, state)
	}

	for key, want := range map[string]string{
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		"Restart":         "on-failure",
		"KillSignal":      "SIGTERM",
		"DynamicUser":     "yes",
	} {
		if got := u.one(t, "Service", key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if got := u.one(t, "Service", "TimeoutStopSec"); got == "" || got == "infinity" {
		t.Errorf("TimeoutStopSec=%q: shutdown must be bounded", got)
	}
	if env := u.one(t, "Service", "EnvironmentFile"); !strings.HasPrefix(strings.TrimPrefix(env, "-"), "/etc/cvmwatch/") {
		t.Errorf("EnvironmentFile=%s, want one under /etc/cvmwatch", env)
	}
	if ww := u.one(t, "Install", "WantedBy"); ww != "multi-user.target" {
		t.Errorf("WantedBy=%s", ww)
	}
}
