package main

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// composeFile is the part of docker-compose.yml the checks read. No Docker
// engine runs where the tests do, so this is how the file is kept honest.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Profiles    []string           `yaml:"profiles"`
	Entrypoint  []string           `yaml:"entrypoint"`
	Command     []string           `yaml:"command"`
	Environment map[string]*string `yaml:"environment"`
	Volumes     []string           `yaml:"volumes"`
	Ports       []string           `yaml:"ports"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
		Timeout string   `yaml:"timeout"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// natsClientPort is the client port of the official nats image.
const natsClientPort = 4222

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal(readRepoFile(t, "docker-compose.yml"), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return f
}

// builtHere reports whether the service runs the image of configs/Dockerfile.
func (s composeService) builtHere() bool {
	return s.Build != nil || s.Image == "cvmwatch:local"
}

func TestComposeAgreesWithTheBinaryAndConfigs(t *testing.T) {
	t.Parallel()
	f := loadCompose(t)
	d := loadDockerfile(t)

	for _, want := range []string{"nats", "cvmwatch", "sim", "tail"} {
		if _, ok := f.Services[want]; !ok {
			t.Errorf("no %q service", want)
		}
	}
	if p := f.Services["cvmwatch"].Profiles; len(p) != 0 {
		t.Errorf("the cvmwatch service is in profiles %q: it must start with a plain docker compose up", p)
	}
	for _, name := range []string{"sim", "tail"} {
		if s, ok := f.Services[name]; ok && !slices.Contains(s.Profiles, "demo") {
			t.Errorf("service %s is not in the demo profile", name)
		}
	}

	for name, s := range f.Services {
		t.Run(name, func(t *testing.T) {
			checkComposeCommon(t, f, name, s)
			if !s.builtHere() {
				return
			}
			if s.Build == nil || s.Build.Context != "." || s.Build.Dockerfile != "configs/Dockerfile" {
				t.Errorf("build: want context . and dockerfile configs/Dockerfile")
			} else if _, err := os.Stat(repoFile(s.Build.Dockerfile)); err != nil {
				t.Error(err)
			}
			if len(s.Entrypoint) > 0 {
				t.Errorf("entrypoint %q overrides the image's /cvmwatch", s.Entrypoint)
			}
			args := s.Command
			if len(args) == 0 {
				args = d.cmd
			}
			c := parseCommandLine(t, "service "+name+" command", args)
			listen := "" // what the service serves, for ports and healthcheck
			switch c.Name() {
			case "run":
				listen = checkComposeRun(t, f, name, s, c)
			case "sim":
				listen = flagString(t, c, "listen")
				allowed, _ := c.Flags().GetBool("allow-non-loopback")
				if err := checkLoopback(listen, allowed); err != nil {
					t.Errorf("sim would refuse to start: %v", err)
				}
			case "tail":
				checkComposeNATSURL(t, f, name, s, flagString(t, c, "server"))
			case "notify":
				listen = checkComposeNotify(t, f, name, s, c)
			}
			checkComposePorts(t, name, s, listen)
			checkComposeHealth(t, name, s, d, c, listen)
		})
	}
}

// checkComposeCommon checks what every service must get right: ports only on
// the host's loopback, named volumes declared, dependencies enabled in the
// same profiles, no secret written in the file.
func checkComposeCommon(t *testing.T, f composeFile, name string, s composeService) {
	t.Helper()
	for _, p := range s.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %q is published on every host interface; bind it to 127.0.0.1", p)
		}
	}
	for _, v := range s.Volumes {
		src, _, _ := strings.Cut(v, ":")
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			continue
		}
		if _, ok := f.Volumes[src]; !ok {
			t.Errorf("volume %q is not declared under the top-level volumes", src)
		}
	}
	for dep := range s.DependsOn {
		ds, ok := f.Services[dep]
		if !ok {
			t.Errorf("depends_on %s: no such service", dep)
			continue
		}
		for _, p := range ds.Profiles {
			if !slices.Contains(s.Profiles, p) {
				t.Errorf("depends_on %s, which only runs in profile %s", dep, p)
			}
		}
	}
	secretKey := regexp.MustCompile(`(?i)secret|token|password|passwd|key`)
	for k, v := range s.Environment {
		if v == nil || !secretKey.MatchString(k) {
			continue
		}
		if *v != cvmsim.DefaultSecretID && *v != cvmsim.DefaultSecretKey {
			t.Errorf("environment %s is written in the file; pass it through from the environment (%s:)", k, k)
		}
	}
}

// checkComposeRun checks a daemon service against its mounted config and
// returns the config's http.listen.
func checkComposeRun(t *testing.T, f composeFile, name string, s composeService, c *cobra.Command) string {
	t.Helper()
	target := flagString(t, c, "config")
	var source string
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			source = parts[0]
			if len(parts) < 3 || parts[2] != "ro" {
				t.Errorf("config %s is mounted writable; mount it :ro", v)
			}
		}
	}
	if source == "" {
		t.Fatalf("run --config %s, but nothing is mounted there", target)
	}
	raw := readRepoFile(t, source)
	cfg, err := ParseConfig(raw, func(k string) (string, bool) {
		v, ok := s.Environment[k]
		if !ok || v == nil {
			return "", false
		}
		return *v, true
	})
	if err != nil {
		t.Fatalf("config %s (with the service's environment): %v", source, err)
	}
	if len(cfg.literalSecrets) > 0 {
		t.Errorf("config %s holds %s literally; a checkout is world-readable, take it from ${VAR}", source, strings.Join(cfg.literalSecrets, ", "))
	}

	dataVolume := ""
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfg.DataDir {
			dataVolume = parts[0]
		}
	}
	if _, named := f.Volumes[dataVolume]; !named {
		t.Errorf("data_dir %s is not a named volume of the service (volumes %q)", cfg.DataDir, s.Volumes)
	}
	if cfg.NATS.URL == "" {
		t.Error("nats.url is empty: the service would run an embedded NATS server instead of using the nats service")
	}
	for _, u := range splitURLs(cfg.NATS.URL) {
		checkComposeNATSURL(t, f, name, s, u)
	}
	for i, a := range cfg.Accounts {
		if a.Endpoint == "" {
			continue
		}
		u, err := url.Parse(a.Endpoint)
		if err != nil {
			t.Fatalf("accounts[%d].endpoint: %v", i, err)
		}
		dep, ok := f.Services[u.Hostname()]
		if !ok {
			continue // an endpoint outside compose
		}
		if _, ok := s.DependsOn[u.Hostname()]; !ok {
			t.Errorf("accounts[%d].endpoint is service %s, which %s does not depend on", i, u.Hostname(), name)
		}
		sc := parseCommandLine(t, "service "+u.Hostname()+" command", dep.Command)
		_, port := listenPort(t, u.Hostname()+" --listen", flagString(t, sc, "listen"))
		if u.Port() != strconv.Itoa(port) {
			t.Errorf("accounts[%d].endpoint %s, but %s listens on port %d", i, a.Endpoint, u.Hostname(), port)
		}
	}
	return cfg.HTTP.Listen
}

// checkComposeNATSURL checks that a NATS URL names the nats service and its
// client port, and that the service depends on it.
func checkComposeNATSURL(t *testing.T, f composeFile, name string, s composeService, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("NATS URL %q: %v", raw, err)
	}
	ns, ok := f.Services[u.Hostname()]
	if !ok || !strings.HasPrefix(ns.Image, "nats:") {
		t.Fatalf("NATS URL %s: host %s is not a nats service", raw, u.Hostname())
	}
	if u.Port() != strconv.Itoa(natsClientPort) || slices.Contains(ns.Command, "-p") || slices.Contains(ns.Command, "--port") {
		t.Errorf("NATS URL %s: the nats service serves clients on %d", raw, natsClientPort)
	}
	if _, ok := s.DependsOn[u.Hostname()]; !ok {
		t.Errorf("%s talks to %s but does not depend on it", name, u.Hostname())
	}
}

// checkComposeNotify checks the notifier's service: its config is mounted
// read-only, loads with placeholder values for the variables the service
// passes through (and none written in the file), has routes, and reads the
// nats service.
// checkComposeNotify checks a notifier service against its mounted config
// and returns the config's http.listen (it serves /healthz and /readyz).
func checkComposeNotify(t *testing.T, f composeFile, name string, s composeService, c *cobra.Command) string {
	t.Helper()
	target := flagString(t, c, "config")
	source := ""
	for _, v := range s.Volumes {
		if parts := strings.Split(v, ":"); len(parts) == 3 && parts[1] == target && parts[2] == "ro" {
			source = parts[0]
		}
	}
	if source == "" {
		t.Fatalf("notify --config %s, but nothing is mounted there read-only", target)
	}
	cfg, err := ParseConfig(readRepoFile(t, source), func(k string) (string, bool) {
		v, ok := s.Environment[k]
		if !ok {
			return "", false
		}
		if v == nil {
			return "https://chat.example.com/hook/" + k, true // passed through from the host
		}
		return *v, true
	})
	if err != nil {
		t.Fatalf("config %s (with the service's environment): %v", source, err)
	}
	if len(cfg.literalSecrets) > 0 {
		t.Errorf("config %s holds %s literally; take it from ${VAR}", source, strings.Join(cfg.literalSecrets, ", "))
	}
	if !cfg.Notify.Enabled() {
		t.Errorf("config %s has no notify routes", source)
	}
	checkComposeNATSURL(t, f, name, s, cfg.NATS.URL)
	return cfg.HTTP.Listen
}

// checkComposePorts checks that each published container port is one the
// service listens on, on an address other containers and the host reach.
func checkComposePorts(t *testing.T, name string, s composeService, listen string) {
	t.Helper()
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		container := parts[len(parts)-1]
		if listen == "" {
			t.Errorf("port %s is published, but %s serves nothing", p, name)
			continue
		}
		host, port := listenPort(t, name+" listen", listen)
		if container != strconv.Itoa(port) {
			t.Errorf("port %s publishes container port %s, the service listens on %s", p, container, listen)
		}
		if !anyAddress(host) {
			t.Errorf("port %s is published, but the service listens on %s only (inside its container)", p, listen)
		}
	}
}

// checkComposeHealth checks the healthcheck a service runs: its own, or the
// image's, which probes the default http.listen.
func checkComposeHealth(t *testing.T, name string, s composeService, d dockerfile, c *cobra.Command, listen string) {
	t.Helper()
	hc := s.Healthcheck
	switch {
	case hc != nil && hc.Disable:
		if listen != "" {
			t.Errorf("the healthcheck of %s, which serves %s, is disabled", name, listen)
		}
		return
	case hc == nil || len(hc.Test) == 0:
		if listen == "" {
			t.Fatalf("%s serves no health endpoint but inherits the image's healthcheck: set healthcheck: {disable: true}", name)
		}
		image := parseCommandLine(t, "Dockerfile HEALTHCHECK", d.healthcheck[1:])
		checkHealthURL(t, name+" (the image's HEALTHCHECK)", flagString(t, image, "url"), listen)
		return
	}
	if hc.Test[0] != "CMD" || len(hc.Test) < 2 || hc.Test[1] != "/cvmwatch" {
		t.Fatalf("healthcheck %q: want [CMD, /cvmwatch, healthcheck, ...] (no shell in the image)", hc.Test)
	}
	hcCmd := parseCommandLine(t, "service "+name+" healthcheck", hc.Test[2:])
	if hcCmd.Name() != "healthcheck" {
		t.Fatalf("healthcheck runs %s, want healthcheck", hcCmd.CommandPath())
	}
	if listen == "" {
		t.Fatalf("%s has a healthcheck but serves nothing", name)
	}
	checkHealthURL(t, "service "+name+" healthcheck", flagString(t, hcCmd, "url"), listen)
	if hc.Timeout != "" {
		dt, err := time.ParseDuration(hc.Timeout)
		own, _ := hcCmd.Flags().GetDuration("timeout")
		if err != nil || dt <= own {
			t.Errorf("healthcheck timeout %s must exceed the command's --timeout %v", hc.Timeout, own)
		}
	}
}

// TestComposeNATSService checks the broker: JetStream on, its store on a
// named volume.
func TestComposeNATSService(t *testing.T) {
	t.Parallel()
	f := loadCompose(t)
	s := f.Services["nats"]
	if !slices.Contains(s.Command, "-js") {
		t.Errorf("nats command %q does not enable JetStream (-js)", s.Command)
	}
	i := slices.Index(s.Command, "-sd")
	if i < 0 || i+1 >= len(s.Command) {
		t.Fatalf("nats command %q has no store directory (-sd DIR)", s.Command)
	}
	store := s.Command[i+1]
	found := false
	for _, v := range s.Volumes {
		src, rest, _ := strings.Cut(v, ":")
		if dst, _, _ := strings.Cut(rest, ":"); dst == store {
			_, found = f.Volumes[src]
		}
	}
	if !found {
		t.Errorf("the JetStream store %s is not on a named volume", store)
	}
	if !slices.Contains(s.Ports, "127.0.0.1:4222:4222") {
		t.Errorf("nats ports %q: want 127.0.0.1:4222:4222 for tail and history on the host", s.Ports)
	}
}
