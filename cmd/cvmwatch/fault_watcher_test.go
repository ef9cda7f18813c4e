package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// Faults of the watcher process itself.

// TestFaultWatcherCrashPoints kills the daemon with SIGKILL at each named
// step (CVMWATCH_TEST_CRASH_AT) with three changes pending, restarts it, and
// checks that the stream holds the three events exactly once.
func TestFaultWatcherCrashPoints(t *testing.T) {
	t.Parallel()
	for _, point := range []string{watcher.CrashAfterScan, watcher.CrashAfterCommit, watcher.CrashAfterPublish, watcher.CrashMidAck} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, 150, nil)
			r.start()
			r.waitBaseline()
			if err := r.d.signal(syscall.SIGTERM); err != nil {
				t.Fatalf("SIGTERM: %v", err)
			}
			r.change(3)
			r.start(crashEnv + "=" + point)
			err, done := r.d.wait(30 * time.Second)
			if !done || !killedBy(err, syscall.SIGKILL) {
				t.Fatalf("crash point %s: exited %v (done %t), want SIGKILL; log: %s", point, err, done, keepLog(r.log))
			}
			r.start()
			if rep := r.converge(30 * time.Second); rep.Events != 3 {
				t.Fatalf("events = %d, want 3:\n%s", rep.Events, rep)
			}
		})
	}
}

// TestFaultWatcherSIGTERMMidScan stops the daemon while a scan waits on a
// slow page: it exits cleanly at once, commits nothing of the abandoned
// scan, and the next run publishes the changes.
func TestFaultWatcherSIGTERMMidScan(t *testing.T) {
	t.Parallel()
	r := newRig(t, 150, nil)
	r.start()
	r.waitBaseline()
	r.change(2)
	id := r.sim.AddFault(cvmsim.Fault{Kind: cvmsim.FaultLatency, Delay: cvmsim.Duration(20 * time.Second),
		Action: cvmsim.ActionDescribeInstancesStatus, Offset: intp(100)})
	for deadline := time.Now().Add(10 * time.Second); firedOf(r.sim, id) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow page was never requested")
		}
	}
	start := time.Now()
	if err := r.d.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM mid-scan: %v; log: %s", err, keepLog(r.log))
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("SIGTERM took %s: the scan in flight was waited for", d)
	}
	if !strings.Contains(r.log.String(), "cvmwatch stopped") {
		t.Fatalf("no clean stop in the log: %s", keepLog(r.log))
	}
	r.sim.ClearFaults()
	r.start()
	if rep := r.converge(30 * time.Second); rep.Events != 2 {
		t.Fatalf("events = %d, want 2:\n%s", rep.Events, rep)
	}
}

func firedOf(sim *cvmsim.Server, id int) int {
	for _, f := range sim.Faults() {
		if f.ID == id {
			return f.Fired
		}
	}
	return 0
}

// TestFaultTwoProcessesOneDataDir: a second daemon on the same data dir
// refuses to start, promptly and naming the database; the first one goes
// on working.
func TestFaultTwoProcessesOneDataDir(t *testing.T) {
	t.Parallel()
	r := newRig(t, 100, nil)
	r.start()
	r.waitBaseline()
	second := newLogFile(t)
	d2 := startDaemon(t, r.cfgPath, second)
	err, done := d2.wait(60 * time.Second)
	if !done {
		t.Fatal("the second daemon hangs instead of refusing")
	}
	if err == nil {
		t.Fatal("the second daemon ran on the same data dir")
	}
	if msg := second.String(); !strings.Contains(msg, filepath.Join(r.cfg.DataDir, "cvmwatch.db")) {
		t.Fatalf("the refusal does not name the database: %s", msg)
	}
	if r.d.exited() {
		t.Fatalf("the first daemon died: %v", r.d.err)
	}
	r.change(1)
	if rep := r.converge(30 * time.Second); rep.Events != 1 {
		t.Fatalf("events = %d, want 1:\n%s", rep.Events, rep)
	}
}

// TestFaultCorruptDatabaseRefused: a damaged database file is refused with
// a clear error and left exactly as it was, never replaced by a fresh one.
func TestFaultCorruptDatabaseRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 30)
	h.scanAndRelay()
	h.close()
	path := filepath.Join(h.cfg.DataDir, "cvmwatch.db")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string]func([]byte) []byte{
		"garbage": func([]byte) []byte { return bytes.Repeat([]byte("not a bolt database "), 1000) },
		"zeroed meta pages": func(b []byte) []byte {
			b = bytes.Clone(b)
			clear(b[:2*4096])
			return b
		},
		"truncated": func(b []byte) []byte { return bytes.Clone(b[:len(b)/3]) },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			bad := f(good)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := openDaemon(t.Context(), h.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				d.Close()
				t.Fatal("a corrupt database was opened")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, bad) {
				t.Fatal("the corrupt database file was changed")
			}
		})
	}
}
