package main

import (
	"strings"
	"testing"
)

// TestConfigTypeErrorNeverEchoesTheValue: a secret pasted under the wrong
// key (a number, a duration, a replica count) is refused with the key at
// fault and without the value, whether written in the file or taken from
// the environment.
func TestConfigTypeErrorNeverEchoesTheValue(t *testing.T) {
	const secret = "SEKRIT-misplaced-4e5f6a"
	lookup := func(name string) (string, bool) {
		if name == "MISPLACED" {
			return secret, true
		}
		return "", false
	}
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"number in the file", "poll:\n  rate: " + secret + "\n", "poll.rate"},
		{"number from the environment", "poll:\n  rate: ${MISPLACED}\n", "poll.rate"},
		{"duration in the file", "poll:\n  interval: " + secret + "\n", "poll.interval"},
		{"duration from the environment", "poll:\n  interval: ${MISPLACED}\n", "poll.interval"},
		{"replica count", "nats:\n  replicas: " + secret + "\n", "nats.replicas"},
		{"boolean", "poll:\n  hot: " + secret + "\n", "poll.hot"},
		{"a value holding backquotes", "poll:\n  rate: \"" + secret + "`x` y\"\n", "poll.rate"},
		{"a value ending in a backquote", "poll:\n  rate: \"ab`" + secret + "\"\n", "poll.rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\n"+tc.yaml), lookup)
			if err == nil {
				t.Fatal("ParseConfig accepted a string where the key wants another type")
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name %s", err, tc.key)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error echoes the value: %q", err)
			}
		})
	}
}
