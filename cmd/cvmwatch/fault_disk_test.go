package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFaultBoltDiskFull puts the data dir on a small tmpfs (root only),
// fills it, and makes 600 changes: the commit fails for want of space,
// nothing is published, the daemon keeps running; once space is freed the
// next scan commits and every event arrives once. It needs root (mount);
// without it the test is skipped with the reason (failed under CI=true).
func TestFaultBoltDiskFull(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		skipUnlessCI(t, "bbolt disk full needs root to mount a small tmpfs")
	}
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk).CombinedOutput(); err != nil {
		skipUnlessCI(t, "cannot mount a tmpfs here (%v: %s): the disk-full fault needs it", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })

	r := newRig(t, 1500, func(c *daemonConfig) { c.DataDir = filepath.Join(disk, "data") })
	r.start()
	r.waitBaseline()
	fillDisk(t, filepath.Join(disk, "filler"))
	r.change(600)
	r.waitLog("no space left on device", 30*time.Second)
	// Three more failing cycles: none may publish anything.
	failed := strings.Count(r.log.String(), "no space left on device")
	for deadline := time.Now().Add(30 * time.Second); strings.Count(r.log.String(), "no space left on device") < failed+3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no further failing commits within 30s; log: %s", keepLog(r.log))
		}
	}
	msgs, err := readStream(t.Context(), r.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Fatalf("%d events published although their commit failed", len(msgs))
	}
	if r.d.exited() {
		t.Fatalf("the daemon exited on a full disk: %v; log: %s", r.d.err, keepLog(r.log))
	}
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	if rep := r.converge(60 * time.Second); rep.Events != 600 {
		t.Fatalf("events = %d, want 600:\n%s", rep.Events, rep)
	}
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill disk: %v", err)
			}
			return
		}
	}
}
