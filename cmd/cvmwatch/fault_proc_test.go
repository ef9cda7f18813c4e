package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// This file holds the fault suite's process harness: the cvmwatch binary
// built once and cvmwatch daemon processes that can be SIGKILLed or
// SIGTERMed. The nats-server process that can be SIGKILLed is
// natstest.Server, built from the pinned nats-server module.

// binDir holds the binary built by TestMain; removed when the tests end.
var binOnce struct {
	sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	// The CLI commands read NATS_* variables as defaults for their flags;
	// whatever the machine exports must not change the tests.
	for _, v := range []string{"NATS_URL", "NATS_CREDS", "NATS_NKEY", "NATS_USER", "NATS_PASSWORD", "NATS_CA", "NATS_CERT", "NATS_KEY", "NATS_TOKEN"} {
		os.Unsetenv(v)
	}
	// No test may reach the real metadata service through the default
	// credential chain: unless a test points it at a fake, it is a closed
	// loopback port. The built binary inherits this.
	if _, set := os.LookupEnv(metadataEndpointEnv); !set {
		os.Setenv(metadataEndpointEnv, "http://127.0.0.1:1")
	}
	code := m.Run()
	if binOnce.path != "" {
		os.RemoveAll(filepath.Dir(binOnce.path))
	}
	natstest.RemoveServerBinary()
	reportSkips(code)
	os.Exit(code)
}

// cvmwatchBinary builds cmd/cvmwatch once per test run and returns its path.
func cvmwatchBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cvmwatch-bin-")
		if err != nil {
			binOnce.err = err
			return
		}
		path := filepath.Join(dir, "cvmwatch")
		out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
		if err != nil {
			binOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binOnce.path = path
	})
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

// daemonProc is one `cvmwatch run` (or other long-running command) process.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done is closed
	log  *lockedFile
}

// lockedFile appends every process's output to one file.
type lockedFile struct {
	mu sync.Mutex
	f  *os.File
}

func (l *lockedFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *lockedFile) String() string {
	b, _ := os.ReadFile(l.f.Name())
	return string(b)
}

func newLogFile(t testing.TB) *lockedFile {
	f, err := os.Create(filepath.Join(t.TempDir(), "cvmwatch.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &lockedFile{f: f}
}

// startDaemon runs `cvmwatch run --config cfg`; env entries are added to the
// environment (e.g. the crash point).
func startDaemon(t testing.TB, cfg string, log *lockedFile, env ...string) *daemonProc {
	t.Helper()
	return startProc(t, log, env, "run", "--config", cfg)
}

// startProc runs `cvmwatch args...` with env added to the environment,
// its output appended to log; it is SIGKILLed when the test ends.
func startProc(t testing.TB, log *lockedFile, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(cvmwatchBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = diesWithTest()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cvmwatch: %v", err)
	}
	p := &daemonProc{cmd: cmd, done: make(chan struct{}), log: log}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.signal(syscall.SIGKILL) })
	return p
}

func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits for the process to exit.
func (p *daemonProc) signal(sig syscall.Signal) error {
	if p.exited() {
		return p.err
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return errors.New("process did not exit within 30s of the signal; killed")
	}
	return p.err
}

// wait waits for the process to exit by itself, up to d.
func (p *daemonProc) wait(d time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

// killedBy reports whether the process was ended by sig.
func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// daemonConfig writes a config file for one account on the simulator.
type daemonConfig struct {
	DataDir, SimURL, NATSURL, Listen string
	Regions                          []string
	Interval                         time.Duration
	Announce                         bool
	Extra                            string // appended YAML (top-level keys)
	NATSExtra                        string // appended under nats:
}

func (c daemonConfig) write(t testing.TB) string {
	t.Helper()
	regions := c.Regions
	if len(regions) == 0 {
		regions = []string{"ap-guangzhou"}
	}
	nats := fmt.Sprintf("  url: %s\n", c.NATSURL)
	if c.NATSURL == "" {
		nats = fmt.Sprintf("  listen: %s\n", c.Listen)
	}
	text := fmt.Sprintf(`data_dir: %s
accounts:
  - name: prod
    regions: [%s]
    endpoint: %s
    credentials: {secret_id: AKIDcvmsim, secret_key: cvmsim-secret-key}
poll:
  interval: %s
events:
  announce_baseline: %t
nats:
%s%shttp:
  listen: 127.0.0.1:0
log:
  level: debug
%s`, c.DataDir, strings.Join(regions, ", "), c.SimURL, c.Interval, c.Announce, nats, c.NATSExtra, c.Extra)
	path := filepath.Join(t.TempDir(), "cvmwatch.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readStream reads every state message of the CVMWATCH stream at url.
func readStream(ctx context.Context, url string, opts ...nats.Option) ([]oracle.Message, error) {
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	stored, err := publisher.ReadStream(ctx, js, "CVMWATCH", "cvm")
	return oracleMessages(stored), err
}

// readScans returns how many scan summaries the scans stream holds (the
// last nats.scan_keep of each target) and the
// windows of the clean ones (complete, nothing rejected).
func readScans(ctx context.Context, url string) (int, []oracle.ScanWindow, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, nil, err
	}
	c, err := js.OrderedConsumer(ctx, "CVMWATCH_SCANS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cvm.scan.>"}})
	if err != nil {
		return 0, nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, nil, err
	}
	n := int(info.NumPending)
	var clean []oracle.ScanWindow
	for read := 0; read < n; {
		batch, err := c.Fetch(min(n-read, 1000), jetstream.FetchContext(ctx))
		if err != nil {
			return 0, nil, err
		}
		for m := range batch.Messages() {
			read++
			var s publisher.ScanMessage
			if err := json.Unmarshal(m.Data(), &s); err != nil {
				return 0, nil, fmt.Errorf("scan summary: %w", err)
			}
			start, err := time.Parse(time.RFC3339Nano, s.Started)
			if err != nil {
				return 0, nil, fmt.Errorf("scan summary started: %w", err)
			}
			if s.Complete && s.Rejected == 0 {
				clean = append(clean, oracle.ScanWindow{Region: s.Region, Start: start, End: start.Add(time.Duration(s.DurationMs+1) * time.Millisecond)})
			}
		}
		if err := batch.Error(); err != nil {
			return 0, nil, err
		}
	}
	return n, clean, nil
}

// diesWithTest makes a child process get SIGKILL when the test process
// dies (a panic, the -timeout), so no server or daemon outlives it holding
// its port and CPU. (Linux sends it when the forking OS thread exits; the Go
// runtime ends threads only for goroutines that exit locked to one, which
// these tests never do.)
func diesWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
