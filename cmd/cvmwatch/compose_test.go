package main

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cvmwatch/cvmwatch/publisher/mempub"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
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
	cfg := mountedConfig(t, ".", s, flagString(t, c, "config"))

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

// mountedConfig returns the config file mounted at target in s (its
// source relative to dir, the compose file's directory in the repository),
// parsed by the real loader with the service's environment. It must be
// mounted read-only and hold no secret literally.
func mountedConfig(t *testing.T, dir string, s composeService, target string) *Config {
	t.Helper()
	var source string
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			source = path.Join(dir, parts[0])
			if len(parts) < 3 || parts[2] != "ro" {
				t.Errorf("config %s is mounted writable; mount it :ro", v)
			}
		}
	}
	if source == "" {
		t.Fatalf("run --config %s, but nothing is mounted there", target)
	}
	cfg, err := ParseConfig(readRepoFile(t, source), func(k string) (string, bool) {
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
	return cfg
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

// haComposeFile is the HA example: two replicas on a 3-node NATS cluster.
// Paths in it are relative to configs/, where it lives.
const haComposeFile = "configs/docker-compose.ha.yaml"

// TestComposeHAAgreesWithTheBinaryAndConfigs checks the HA example as the
// single-process file is checked, plus what HA needs: three nats nodes
// routed to each other with JetStream on their own volumes, two replicas
// whose config loads with ha.enabled, names every node and gives each
// replica its own id.
func TestComposeHAAgreesWithTheBinaryAndConfigs(t *testing.T) {
	t.Parallel()
	var f composeFile
	if err := yaml.Unmarshal(readRepoFile(t, haComposeFile), &f); err != nil {
		t.Fatalf("%s: %v", haComposeFile, err)
	}
	d := loadDockerfile(t)
	var nodes, replicas []string
	for name, s := range f.Services {
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			nodes = append(nodes, name)
		case s.builtHere():
			replicas = append(replicas, name)
		default:
			t.Errorf("service %s is neither a nats node nor cvmwatch", name)
		}
	}
	slices.Sort(nodes)
	slices.Sort(replicas)
	if len(nodes) != 3 || len(replicas) != 2 {
		t.Fatalf("nats nodes %q and cvmwatch replicas %q: want 3 and 2", nodes, replicas)
	}
	checkComposeCluster(t, f, nodes)

	ids := map[string]string{} // replica id -> service
	for _, name := range replicas {
		s := f.Services[name]
		t.Run(name, func(t *testing.T) {
			checkComposeCommon(t, f, name, s)
			if s.Build == nil || s.Build.Context != ".." || s.Build.Dockerfile != "configs/Dockerfile" {
				t.Errorf("build: want context .. (the repository, from configs/) and dockerfile configs/Dockerfile")
			} else if _, err := os.Stat(repoFile(path.Join("configs", s.Build.Context, s.Build.Dockerfile))); err != nil {
				t.Error(err)
			}
			c := parseCommandLine(t, "service "+name+" command", s.Command)
			if c.Name() != "run" {
				t.Fatalf("service %s runs %s, want run", name, c.CommandPath())
			}
			cfg := mountedConfig(t, "configs", s, flagString(t, c, "config"))
			if !cfg.HA.Enabled {
				t.Error("ha.enabled is not true")
			}
			id, err := cfg.HA.replica()
			if err != nil || cfg.HA.ReplicaID == "" {
				t.Fatalf("ha.replica_id %q (%v): set it per service, the container's host name is random", cfg.HA.ReplicaID, err)
			}
			if other, ok := ids[id]; ok {
				t.Errorf("replica id %s is also %s's", id, other)
			}
			ids[id] = name
			urls := splitURLs(cfg.NATS.URL)
			for _, u := range urls {
				checkComposeNATSURL(t, f, name, s, u)
			}
			for _, n := range nodes {
				if !slices.ContainsFunc(urls, func(u string) bool { return strings.Contains(u, "//"+n+":") }) {
					t.Errorf("nats.url %s does not name node %s: the replica could not fail over to it", cfg.NATS.URL, n)
				}
			}
			checkComposePorts(t, name, s, cfg.HTTP.Listen)
			checkComposeHealth(t, name, s, d, c, cfg.HTTP.Listen)
		})
	}
	if len(ids) != len(replicas) {
		t.Errorf("replica ids %v: want one per replica", ids)
	}
}

// checkComposeCluster checks the nats nodes: each has JetStream on a named
// volume of its own, a unique server name, the common cluster name, a
// cluster listener, and routes naming every other node's cluster port.
func checkComposeCluster(t *testing.T, f composeFile, nodes []string) {
	t.Helper()
	arg := func(name string, cmd []string, flag string) string {
		i := slices.Index(cmd, flag)
		if i < 0 || i+1 >= len(cmd) {
			t.Fatalf("nats node %s: command %q has no %s", name, cmd, flag)
		}
		return cmd[i+1]
	}
	clusterPort := map[string]string{}
	clusters, names, stores := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, n := range nodes {
		s := f.Services[n]
		checkComposeCommon(t, f, n, s)
		if !slices.Contains(s.Command, "-js") {
			t.Errorf("nats node %s: no JetStream (-js)", n)
		}
		names[arg(n, s.Command, "-n")] = true
		clusters[arg(n, s.Command, "--cluster_name")] = true
		u, err := url.Parse(arg(n, s.Command, "--cluster"))
		if err != nil || u.Port() == "" {
			t.Fatalf("nats node %s: --cluster %v", n, err)
		}
		clusterPort[n] = u.Port()
		dir := arg(n, s.Command, "-sd")
		for _, v := range s.Volumes {
			src, rest, _ := strings.Cut(v, ":")
			if dst, _, _ := strings.Cut(rest, ":"); dst == dir {
				if _, named := f.Volumes[src]; !named || stores[src] {
					t.Errorf("nats node %s: store %s is not on a named volume of its own", n, v)
				}
				stores[src] = true
			}
		}
	}
	if len(names) != len(nodes) || len(clusters) != 1 || len(stores) != len(nodes) {
		t.Errorf("server names %v, cluster names %v, store volumes %v: want %d distinct names, one cluster, %d volumes",
			names, clusters, stores, len(nodes), len(nodes))
	}
	for _, n := range nodes {
		routes := map[string]string{}
		for _, r := range strings.Split(arg(n, f.Services[n].Command, "--routes"), ",") {
			u, err := url.Parse(r)
			if err != nil {
				t.Fatalf("nats node %s: route %q: %v", n, r, err)
			}
			routes[u.Hostname()] = u.Port()
		}
		for _, other := range nodes {
			if other == n {
				continue
			}
			if port, ok := routes[other]; !ok || port != clusterPort[other] {
				t.Errorf("nats node %s: routes %v do not name %s on its cluster port %s", n, routes, other, clusterPort[other])
			}
		}
		for host := range routes {
			if _, ok := clusterPort[host]; !ok {
				t.Errorf("nats node %s: route to %s, which is not a nats node", n, host)
			}
		}
	}
}

// k8sObject is the part of a Kubernetes manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    *int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
}

// TestKubernetesExampleAgreesWithTheBinaryAndConfig checks configs/kubernetes.yaml:
// a Deployment of 2 replicas running a real command whose config (the
// ConfigMap, through the real loader) has ha.enabled and takes the replica
// id from the pod's name; credentials only from a Secret; probes on paths
// the daemon serves, on the port it listens on; read-only root, non-root.
func TestKubernetesExampleAgreesWithTheBinaryAndConfig(t *testing.T) {
	t.Parallel()
	objects := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, "configs/kubernetes.yaml")))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("configs/kubernetes.yaml: %v", err)
		}
		if o.Kind != "" {
			objects[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	dep, ok := objects["Deployment/cvmwatch"]
	if !ok {
		t.Fatalf("no Deployment cvmwatch among %v", slices.Collect(maps.Keys(objects)))
	}
	if r := dep.Spec.Replicas; r == nil || *r != 2 {
		t.Errorf("replicas: %s, want 2", yamlOf(r))
	}
	pod := dep.Spec.Template
	for k, v := range dep.Spec.Selector.MatchLabels {
		if pod.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels %v", k, v, pod.Metadata.Labels)
		}
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	ct := pod.Spec.Containers[0]
	if len(ct.Command) > 0 {
		t.Errorf("command %q overrides the image's /cvmwatch", ct.Command)
	}
	c := parseCommandLine(t, "container args", ct.Args)
	if c.Name() != "run" {
		t.Fatalf("the container runs %s, want run", c.CommandPath())
	}

	// The config: the ConfigMap key mounted read-only where --config points.
	configPath := flagString(t, c, "config")
	var cm k8sObject
	for _, m := range ct.VolumeMounts {
		if m.MountPath != path.Dir(configPath) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("volume %s at %s is mounted writable", m.Name, m.MountPath)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cm = objects["ConfigMap/"+v.ConfigMap.Name]
			}
		}
	}
	raw, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("--config %s: no ConfigMap of this file mounts a key %s there", configPath, path.Base(configPath))
	}
	const podName = "cvmwatch-7d9f8c6b5-x2x9z" // what the downward API gives
	secretRef := regexp.MustCompile(`(?i)secret|token|password|passwd|key`)
	env := map[string]string{}
	downward := ""
	for _, e := range ct.Env {
		switch {
		case e.Value != nil:
			if secretRef.MatchString(e.Name) {
				t.Errorf("env %s is written in the file; take it from a Secret (secretKeyRef)", e.Name)
			}
			env[e.Name] = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name], downward = podName, e.Name
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "":
			env[e.Name] = "from-secret-" + e.ValueFrom.SecretKeyRef.Key
		default:
			t.Errorf("env %s: no value, pod field or Secret key", e.Name)
		}
	}
	for _, k := range []string{"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"} {
		if !strings.HasPrefix(env[k], "from-secret-") {
			t.Errorf("env %s does not come from a Secret", k)
		}
	}
	cfg, err := ParseConfig([]byte(raw), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the ConfigMap's config (with the container's environment): %v", err)
	}
	if len(cfg.literalSecrets) > 0 {
		t.Errorf("the ConfigMap holds %s literally; take it from a Secret", strings.Join(cfg.literalSecrets, ", "))
	}
	if !cfg.HA.Enabled {
		t.Error("ha.enabled is not true")
	}
	if id, err := cfg.HA.replica(); err != nil || id != podName || downward == "" {
		t.Errorf("replica id %q (%v), want the pod's name through the downward API (env %q)", id, err, downward)
	}

	// Probes: the paths the daemon serves, on the port it listens on.
	host, port := listenPort(t, "http.listen", cfg.HTTP.Listen)
	if !anyAddress(host) {
		t.Errorf("http.listen %s: the kubelet probes the pod's address, not its loopback", cfg.HTTP.Listen)
	}
	handler := k8sServedPaths(t)
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"livenessProbe", ct.LivenessProbe, "/healthz"}, {"readinessProbe", ct.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s probes %s, want %s", p.name, g.Path, p.path)
		}
		if !handler(g.Path) {
			t.Errorf("%s probes %s, which the daemon does not serve", p.name, g.Path)
		}
		probePort := 0
		switch v := g.Port.(type) {
		case int:
			probePort = v
		case string:
			for _, cp := range ct.Ports {
				if cp.Name == v {
					probePort = cp.ContainerPort
				}
			}
		}
		if probePort != port {
			t.Errorf("%s probes port %v, the daemon listens on %s", p.name, g.Port, cfg.HTTP.Listen)
		}
	}

	sc := ct.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities drop %q, want ALL", sc.Capabilities.Drop)
	}
	psc := pod.Spec.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod does not run as non-root (runAsNonRoot, a runAsUser other than 0)")
	}
}

// k8sServedPaths returns whether the daemon's HTTP handler serves a GET of
// a path (anything but 404 and 405).
func k8sServedPaths(t *testing.T) func(string) bool {
	t.Helper()
	w, err := watcher.New(watcher.Config{Store: store.NewMemory(), Publisher: mempub.New()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHTTPHandler(w, newMetrics(nil), store.NewMemory(), time.Now, nil)
	return func(p string) bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		return rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed
	}
}

// yamlOf renders v for a message.
func yamlOf(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}
