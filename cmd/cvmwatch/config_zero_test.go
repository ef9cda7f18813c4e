package main

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// A key left out gets its default; a number or duration written is taken
// as written. The zeros that are refused are rows of testdata/badconfigs
// (explicit_zero.yaml); these are the zeros that mean something.
func TestMeaningfulZerosAreKept(t *testing.T) {
	raw := `accounts: [{name: prod, regions: [ap-guangzhou]}]
poll: {jitter: 0, max_concurrent_scans: 0}
events: {tombstone_retention: 0s}
nats: {max_age: 0s, listen: "127.0.0.1:0"}
http: {listen: "127.0.0.1:0"}
`
	cfg, err := ParseConfig([]byte(raw), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Poll.Jitter, 0.0; got != want {
		t.Errorf("poll.jitter: 0 became %v, want %v", got, want)
	}
	if got, want := cfg.Poll.MaxConcurrentScans, 0; got != want {
		t.Errorf("poll.max_concurrent_scans: 0 became %v, want %v", got, want)
	}
	if got, want := cfg.Events.TombstoneRetention.D(), time.Duration(0); got != want {
		t.Errorf("events.tombstone_retention: 0s became %v, want %v", got, want)
	}
	if got, want := cfg.NATS.MaxAge.D(), time.Duration(0); got != want {
		t.Errorf("nats.max_age: 0s became %v, want %v", got, want)
	}
	if got, want := cfg.NATS.Listen, "127.0.0.1:0"; got != want {
		t.Errorf("nats.listen = %q, want %q", got, want)
	}
	// The same keys left out: their defaults.
	cfg, err = ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Poll.Jitter, defaultJitter; got != want {
		t.Errorf("poll.jitter left out = %v, want %v", got, want)
	}
	if got, want := cfg.Events.TombstoneRetention.D(), 7*24*time.Hour; got != want {
		t.Errorf("events.tombstone_retention left out = %v, want %v", got, want)
	}
	if got, want := cfg.Poll.Hot, true; got != want {
		t.Errorf("poll.hot left out = %v, want %v", got, want)
	}
	if got, want := cfg.Poll.HotInterval.D(), time.Second; got != want {
		t.Errorf("poll.hot_interval left out = %v, want %v", got, want)
	}
	if got, want := cfg.Poll.HotShare, 0.25; got != want {
		t.Errorf("poll.hot_share left out = %v, want %v", got, want)
	}
	if got, want := cfg.Poll.DescribeShare, 0.75; got != want {
		t.Errorf("poll.describe_share left out = %v, want %v", got, want)
	}
	// hot: false is kept: it is how the hot set is turned off.
	cfg, err = ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\npoll: {hot: false}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Poll.Hot, false; got != want {
		t.Errorf("poll.hot: false became %v", got)
	}
}

// A null, an unset optional ${VAR} and an empty string leave a key its
// default, as leaving it out does.
func TestNullAndEmptyKeepTheDefault(t *testing.T) {
	for _, tc := range []struct{ name, raw string }{
		{"null", "poll: {interval: ~, jitter: null}\nnats: {stream: ~}\nlog: {level: }\n"},
		{"empty string", "poll: {}\nnats: {stream: \"\", url: ''}\nlog: {level: \"\"}\ndata_dir: \"\"\n"},
		{"empty variable", "nats: {stream: \"${EMPTY}\"}\nlog:\n  level: ${EMPTY}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "accounts: [{name: prod, regions: [ap-guangzhou]}]\n" + tc.raw
			cfg, err := ParseConfig([]byte(raw), env(map[string]string{"EMPTY": ""}))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := cfg.Poll.Interval.D(), defaultInterval; got != want {
				t.Errorf("poll.interval = %v, want %v", got, want)
			}
			if got, want := cfg.Poll.Jitter, defaultJitter; got != want {
				t.Errorf("poll.jitter = %v, want %v", got, want)
			}
			if got, want := cfg.NATS.Stream, defaultStream; got != want {
				t.Errorf("nats.stream = %q, want %q", got, want)
			}
			if got, want := cfg.Log.Level, "info"; got != want {
				t.Errorf("log.level = %q, want %q", got, want)
			}
			if got, want := cfg.DataDir, defaultDataDir; got != want {
				t.Errorf("data_dir = %q, want %q", got, want)
			}
		})
	}
}

// A Config built in Go (demo, tests) gets from applyDefaults the defaults
// a file that leaves the keys out gets from decoding.
func TestApplyDefaultsMatchesAFileThatLeavesKeysOut(t *testing.T) {
	fromFile, err := ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	inGo := &Config{Accounts: []AccountConfig{{Name: "prod", Regions: RegionList{"ap-guangzhou"}}}}
	inGo.applyDefaults()
	fromFile.written, fromFile.literalSecrets = nil, nil
	if !reflect.DeepEqual(inGo, fromFile) {
		t.Errorf("applyDefaults:\n%+v\nwant, as decoded from a file:\n%+v", inGo, fromFile)
	}
	if problems := inGo.validate(); len(problems) > 0 {
		t.Errorf("a Go-built config with its defaults is invalid: %v", problems)
	}
}

// In a Config built in Go a zero interval is one not given, but a given one
// is still checked.
func TestGoBuiltAccountIntervalIsChecked(t *testing.T) {
	c := &Config{Accounts: []AccountConfig{{Name: "prod", Regions: RegionList{"ap-guangzhou"}, Interval: Duration(time.Millisecond)}}}
	c.applyDefaults()
	problems := c.validate()
	if got, want := len(problems), 1; got != want {
		t.Fatalf("problems = %v, want %d", problems, want)
	}
	if got, want := problems[0].Error(), "accounts[0].interval: 1ms is shorter than 1s"; got != want {
		t.Errorf("problem = %q, want %q", got, want)
	}
	c.Accounts[0].Interval = 0
	if problems := c.validate(); len(problems) > 0 {
		t.Errorf("an interval left zero in Go (poll.interval) is refused: %v", problems)
	}
}

// The ha section: off when left out, lease_ttl 15s, the replica id the
// host name made a subject token; on with an external server it is valid.
func TestHADefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte("accounts: [{name: prod, regions: [ap-guangzhou]}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.HA, (HAConfig{LeaseTTL: Duration(15 * time.Second)}); got != want {
		t.Fatalf("ha left out = %+v, want %+v", got, want)
	}
	raw := "accounts: [{name: prod, regions: [ap-guangzhou]}]\nnats: {url: nats://10.0.0.1:4222}\nha: {enabled: true}\n"
	if cfg, err = ParseConfig([]byte(raw), env(nil)); err != nil {
		t.Fatal(err)
	}
	id, err := cfg.HA.replica()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if got, want := id, tokenOf(host); got != want || watcher.ValidateToken(id) != nil {
		t.Fatalf("replica id = %q, want %q, a subject token", got, want)
	}
	if got, want := tokenOf("node-1.example.com"), "node-1-example-com"; got != want {
		t.Fatalf("tokenOf = %q, want %q", got, want)
	}
}
