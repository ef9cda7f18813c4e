package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.yaml.in/yaml/v3"
)

// Secret is a configuration value that is never printed: fmt, slog (text
// and JSON), JSON and YAML output all show it redacted. Reveal returns the
// value.
type Secret string

const redacted = "<redacted>"

func (s Secret) String() string   { return mask(s) }
func (s Secret) GoString() string { return mask(s) }

// MarshalYAML keeps secrets out of check-config output.
func (s Secret) MarshalYAML() (any, error) { return mask(s), nil }

// MarshalJSON keeps secrets out of JSON output (and slog's JSON handler).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(mask(s)) }

// LogValue keeps secrets out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(mask(s)) }

// Reveal returns the secret itself, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

func mask(s Secret) string {
	if s == "" {
		return ""
	}
	return redacted
}

// RegionList is a list of region names, or the single word "all".
type RegionList []string

// All reports whether the list is "all".
func (r RegionList) All() bool { return len(r) == 1 && r[0] == "all" }

// UnmarshalYAML reads "all" or a list of names.
func (r *RegionList) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Value == "all":
		*r = RegionList{"all"}
		return nil
	case n.Kind == yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		*r = names
		return nil
	}
	return fmt.Errorf(`want a list of regions or "all"`)
}

// MarshalYAML writes "all" or the list.
func (r RegionList) MarshalYAML() (any, error) {
	if r.All() {
		return "all", nil
	}
	return []string(r), nil
}

// Duration is a time.Duration written as "30s", "5m", "168h".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 30s")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration like 30s") // the value is never echoed: it may be a misplaced secret
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
