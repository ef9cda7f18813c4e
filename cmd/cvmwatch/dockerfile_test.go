package main

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerfile is what the tests need from configs/Dockerfile: the builder's
// image, and the final stage's instructions.
type dockerfile struct {
	builder     string
	final       string
	run         string // every RUN of the build stages, joined
	user        string
	volumes     []string
	entrypoint  []string
	cmd         []string
	healthcheck []string // exec form, after CMD
	hcTimeout   time.Duration
}

// parseDockerfile reads the instructions, joining continuation lines. JSON
// (exec) form is required for ENTRYPOINT, CMD, VOLUME and HEALTHCHECK CMD:
// the runtime image has no shell to run the string form.
func parseDockerfile(t *testing.T, text string) dockerfile {
	t.Helper()
	var d dockerfile
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	execForm := func(instr, s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("Dockerfile %s %s: not the JSON exec form: %v", instr, s, err)
		}
		return v
	}
	stage := 0
	for _, in := range instrs {
		op, arg, _ := strings.Cut(in, " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(op) {
		case "FROM":
			stage++
			image := strings.Fields(arg)[0]
			if stage == 1 {
				d.builder = image
			}
			d.final = image
			d.user, d.volumes, d.entrypoint, d.cmd, d.healthcheck = "", nil, nil, nil, nil
		case "RUN":
			d.run += arg + "\n"
		case "USER":
			d.user = arg
		case "VOLUME":
			d.volumes = execForm(op, arg)
		case "ENTRYPOINT":
			d.entrypoint = execForm(op, arg)
		case "CMD":
			d.cmd = execForm(op, arg)
		case "HEALTHCHECK":
			opts, cmd, ok := strings.Cut(arg, "CMD ")
			if !ok {
				t.Fatalf("Dockerfile HEALTHCHECK %s: no CMD", arg)
			}
			d.healthcheck = execForm(op, cmd)
			for _, o := range strings.Fields(opts) {
				if v, ok := strings.CutPrefix(o, "--timeout="); ok {
					var err error
					if d.hcTimeout, err = time.ParseDuration(v); err != nil {
						t.Fatalf("Dockerfile HEALTHCHECK %s: %v", o, err)
					}
				}
			}
		}
	}
	if stage < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", stage)
	}
	return d
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	return parseDockerfile(t, string(readRepoFile(t, "configs/Dockerfile")))
}

func TestDockerfileAgreesWithTheBinary(t *testing.T) {
	t.Parallel()
	d := loadDockerfile(t)

	t.Run("static binary on an empty base", func(t *testing.T) {
		if d.final != "scratch" && !strings.HasPrefix(d.final, "gcr.io/distroless/static") {
			t.Errorf("runtime image %s: want scratch or distroless static (no shell, no package manager)", d.final)
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "./cmd/cvmwatch"} {
			if !strings.Contains(d.run, want) {
				t.Errorf("the build does not use %s", want)
			}
		}
	})

	t.Run("builder has go.mod's Go", func(t *testing.T) {
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(readRepoFile(t, "go.mod")))
		if m == nil {
			t.Fatal("go.mod has no go line")
		}
		if want := "golang:" + m[1]; d.builder != want && !strings.HasPrefix(d.builder, want+".") && !strings.HasPrefix(d.builder, want+"-") {
			t.Errorf("builder image %s, want %s (go.mod says go %s)", d.builder, want, m[1])
		}
	})

	t.Run("non-root numeric user", func(t *testing.T) {
		uid, _, _ := strings.Cut(d.user, ":")
		n, err := strconv.Atoi(uid)
		if err != nil || n == 0 {
			t.Errorf("USER %q: want a numeric non-root uid (scratch has no /etc/passwd)", d.user)
		}
	})

	t.Run("entrypoint, default command and data volume", func(t *testing.T) {
		if !slices.Equal(d.entrypoint, []string{"/cvmwatch"}) {
			t.Errorf("ENTRYPOINT %q, want [/cvmwatch]", d.entrypoint)
		}
		c := parseCommandLine(t, "Dockerfile CMD", d.cmd)
		if c.Name() != "run" {
			t.Errorf("CMD runs %s, want run", c.CommandPath())
		}
		if got := flagString(t, c, "config"); got != dockerConfigPath {
			t.Errorf("CMD --config %s, want %s", got, dockerConfigPath)
		}
		if !slices.Contains(d.volumes, defaultDataDir) {
			t.Errorf("VOLUME %q does not hold the default data_dir %s", d.volumes, defaultDataDir)
		}
	})

	t.Run("healthcheck probes the default http.listen", func(t *testing.T) {
		if len(d.healthcheck) == 0 || d.healthcheck[0] != "/cvmwatch" {
			t.Fatalf("HEALTHCHECK CMD %q does not run /cvmwatch", d.healthcheck)
		}
		c := parseCommandLine(t, "Dockerfile HEALTHCHECK", d.healthcheck[1:])
		if c.Name() != "healthcheck" {
			t.Fatalf("HEALTHCHECK runs %s, want healthcheck", c.CommandPath())
		}
		checkHealthURL(t, "Dockerfile HEALTHCHECK", flagString(t, c, "url"), defaultHTTPListen)
		timeout, _ := c.Flags().GetDuration("timeout")
		if d.hcTimeout <= timeout {
			t.Errorf("HEALTHCHECK --timeout=%v must exceed the command's own --timeout %v", d.hcTimeout, timeout)
		}
	})
}

// dockerConfigPath is where the image expects its configuration.
const dockerConfigPath = "/etc/cvmwatch/cvmwatch.yaml"

// checkHealthURL checks that a health probe run inside a container reaches
// a server listening on listen there: loopback host, same port.
func checkHealthURL(t *testing.T, where, raw, listen string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: health URL %q: %v", where, raw, err)
	}
	if !loopbackName(u.Hostname()) {
		t.Errorf("%s: health URL %s: the probe runs in the container, want a loopback host", where, raw)
	}
	host, port := listenPort(t, where+" listen", listen)
	if !anyAddress(host) && !loopbackName(host) {
		t.Errorf("%s: the server listens on %s, which a loopback probe cannot reach", where, listen)
	}
	if u.Port() != strconv.Itoa(port) {
		t.Errorf("%s: health URL %s probes port %s, the server listens on %s", where, raw, u.Port(), listen)
	}
}
