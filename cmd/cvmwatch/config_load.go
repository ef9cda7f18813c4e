package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"

	"go.yaml.in/yaml/v3"
)

// LoadConfig reads, expands, decodes, defaults and validates the file at
// path, and checks the files it names (see checkFiles). Every problem found
// is reported, each naming its key. A file that holds a secret literally is
// refused when group or others can read it, unless allowInsecure (as
// OpenSSH refuses a readable private key).
func LoadConfig(path string, allowInsecure bool) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return loadConfig(path, raw, os.LookupEnv, allowInsecure)
}

// loadConfig is LoadConfig on the bytes read from path.
func loadConfig(path string, raw []byte, lookup func(string) (string, bool), allowInsecure bool) (*Config, error) {
	cfg, err := decodeConfig(raw, lookup, nil)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// The named files are checked here too, not only when run opens them,
	// so that check-config passes no config that run refuses.
	fileErrs, warnings := cfg.checkFiles(allowInsecure, false)
	cfg.warnings = warnings
	if problems := append(cfg.validate(), fileErrs...); len(problems) > 0 {
		return nil, fmt.Errorf("config %s: %w", path, problems)
	}
	if err := checkLiteralSecrets(path, cfg.literalSecrets, allowInsecure); err != nil {
		return nil, err
	}
	cfg.allowInsecure = allowInsecure
	return cfg, nil
}

// stateConfig is what `cvmwatch state` reads of a config file.
type stateConfig struct {
	// HTTPListen is where to ask the running daemon.
	HTTPListen string
	// DataDir holds the database to read when no daemon answers.
	DataDir string
}

// loadStateConfig reads only what state uses of the file at path. A ${VAR}
// in any other key may be unset: on a host where the daemon's secrets live
// only in its service's environment, an operator must still be able to
// look at the state. So the other keys are neither required to expand nor
// validated (which is also why no Config escapes: it is not fit to run).
// The file is still strictly decoded, and refused when it holds a literal
// secret that others can read.
func loadStateConfig(path string, allowInsecure bool) (stateConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return stateConfig{}, fmt.Errorf("config: %w", err)
	}
	needed := func(key string) bool { return key == "data_dir" || key == "http.listen" }
	cfg, err := decodeConfig(raw, os.LookupEnv, func(key string) bool { return !needed(key) })
	if err != nil {
		return stateConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	if _, _, err := net.SplitHostPort(cfg.HTTP.Listen); err != nil {
		return stateConfig{}, fmt.Errorf("config %s: http.listen: %w", path, err)
	}
	if err := checkLiteralSecrets(path, cfg.literalSecrets, allowInsecure); err != nil {
		return stateConfig{}, err
	}
	return stateConfig{HTTPListen: cfg.HTTP.Listen, DataDir: cfg.DataDir}, nil
}

// ParseConfig is LoadConfig on bytes, with lookup for ${VAR} expansion, and
// without looking at the files the config names.
func ParseConfig(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg, err := decodeConfig(raw, lookup, nil)
	if err != nil {
		return nil, err
	}
	if problems := cfg.validate(); len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// decodeConfig reads, expands and decodes raw over the defaults (see
// defaultConfig), without validating it. An unset ${VAR} is an error, unless optional(key) says the
// caller can do without that key: the key is then left out, as if it were
// not written (optional may be nil: every key is required).
func decodeConfig(raw []byte, lookup func(string) (string, bool), optional func(key string) bool) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errEOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var problems configErrors
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	w := &walker{lookup: lookup, optional: optional, lines: map[int]string{}}
	w.walk(root, typeOfConfig, "", &problems)
	if len(problems) > 0 {
		return nil, problems
	}
	cfg := defaultConfig()
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				problems = append(problems, w.locate(msg))
			}
			return nil, problems
		}
		return nil, err
	}
	cfg.literalSecrets = w.literalSecrets
	cfg.written = w.written
	return &cfg, nil
}
