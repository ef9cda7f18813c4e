package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzConfigWalk: whatever the bytes, a config ParseConfig accepts has no
// key the YAML decoder's strict mode (KnownFields) refuses, so the walk
// that finds unknown keys with their paths misses none; and its effective
// form (what check-config prints) loads again, to the same effective form.
func FuzzConfigWalk(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "badconfigs", "*.yaml"))
	seeds = append(seeds, filepath.Join("..", "..", "configs", "cvmwatch.example.yaml"),
		filepath.Join("..", "..", "configs", "cvmwatch.minimal.yaml"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("accounts: [{name: p, regions: [r], interval: 5m}]\npoll: {jitter: 0, interval: 1m}\nnats: {max_age: 0s}\n"))
	f.Add([]byte("accounts: [{name: p, regions: all, credentials: {cvm_role: r, assume_role: {role_arn: a, duration: 2h}}}]\n"))
	f.Add([]byte("accounts: [{name: p, regions: [r]}]\n<<: {data_dir: /x}\n"))
	f.Add([]byte("accounts: [{name: p, regions: [r]}]\nhttp: {listen: \"127.0.0.1:1\", lisen: x}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		lookup := func(string) (string, bool) { return "v", true }
		cfg, err := ParseConfig(raw, lookup)
		if err != nil {
			return
		}
		if !bytes.Contains(raw, []byte("${")) {
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			dec.KnownFields(true)
			var te *yaml.TypeError
			if err := dec.Decode(new(Config)); errors.As(err, &te) {
				for _, msg := range te.Errors {
					if strings.Contains(msg, "not found in type") {
						t.Fatalf("accepted, but the strict decoder refuses a key: %s", msg)
					}
				}
			}
		}
		checkEffectiveConfigLoads(t, cfg)
	})
}

// TestEffectiveConfigLoads: what check-config prints of the example
// configs is itself a config that loads.
func TestEffectiveConfigLoads(t *testing.T) {
	lookup := env(map[string]string{"PROD_SECRET_ID": "AKIDexample", "PROD_SECRET_KEY": "s3cr3t-example",
		"CVMSIM_SECRET_ID": "AKIDcvmsim", "CVMSIM_SECRET_KEY": "cvmsim-secret-key"})
	for _, name := range []string{"cvmwatch.example.yaml", "cvmwatch.minimal.yaml"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ParseConfig(raw, lookup)
			if err != nil {
				t.Fatal(err)
			}
			checkEffectiveConfigLoads(t, cfg)
		})
	}
}

// checkEffectiveConfigLoads fails t unless the effective form of cfg
// loads and its own effective form is the same. A form that holds "${"
// (a value that came from a variable) would be expanded again, so it is
// not checked.
func checkEffectiveConfigLoads(t *testing.T, cfg *Config) {
	t.Helper()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("effective config does not marshal: %v", err)
	}
	if bytes.Contains(out, []byte("${")) {
		return
	}
	again, err := ParseConfig(out, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the effective config does not load: %v\n%s", err, out)
	}
	out2, err := yaml.Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, out2) {
		t.Fatalf("the effective config loads to another one:\n%s\nvs\n%s", out, out2)
	}
}
