package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A test of this package skips only where this machine cannot run it at
// all, through skipBecause, which records it; TestMain ends with one line
// naming every skip and its reason, visible without -v (reportSkips).

// skipped holds "TestName (reason)" for every skip of this test process.
var skipped struct {
	sync.Mutex
	list []string
}

// skipBecause records the skip for TestMain's closing line and skips t.
func skipBecause(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	skipped.Lock()
	skipped.list = append(skipped.list, fmt.Sprintf("%s (%s)", t.Name(), reason))
	skipped.Unlock()
	t.Skip(reason)
}

// skipUnlessCI is skipBecause for a fault CI must run: under CI=true the
// test fails instead.
func skipUnlessCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	skipBecause(t, format, args...)
}

// skipSummary is TestMain's closing line.
func skipSummary() string {
	skipped.Lock()
	defer skipped.Unlock()
	if len(skipped.list) == 0 {
		return "cvmwatch tests: 0 skipped"
	}
	return fmt.Sprintf("cvmwatch tests: %d skipped: %s", len(skipped.list), strings.Join(skipped.list, "; "))
}

// reportSkips prints the closing line. `go test ./...` shows a passing
// package's output only under -v, so after a passing run it also writes the
// line to the go command's own standard output, beside its "ok" lines, or
// else to its standard error (see goCommandOutput). A cached result runs
// nothing and prints no line.
func reportSkips(code int) {
	line := skipSummary()
	fmt.Println(line)
	if code != 0 || testing.Verbose() {
		return // the go command prints this process's output
	}
	if f := goCommandOutput(); f != nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// goCommandOutput opens the standard output of the go command that runs
// this test binary, or its standard error, or returns nil. It skips one
// that is already ours (go test in a package directory streams the test's
// output), and a regular file not opened for appending (the go command
// writes it at its own offset and would overwrite the line): so
// `go test ./... >log 2>&1` shows no line. It returns nil when the parent
// is not the go command.
func goCommandOutput() *os.File {
	ppid := os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || filepath.Base(exe) != "go" {
		return nil
	}
	for fd, ours := range []*os.File{1: os.Stdout, 2: os.Stderr} {
		if ours == nil {
			continue
		}
		f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", ppid, fd), os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		theirs, err1 := f.Stat()
		mine, err2 := ours.Stat()
		switch {
		case err1 != nil || err2 != nil, os.SameFile(theirs, mine):
		case theirs.Mode().IsRegular() && !appends(ppid, fd):
		default:
			return f
		}
		f.Close()
	}
	return nil
}

// appends reports whether process pid's descriptor fd was opened with
// O_APPEND.
func appends(pid, fd int) bool {
	info, err := os.Open(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return false
	}
	defer info.Close()
	for s := bufio.NewScanner(info); s.Scan(); {
		if v, ok := strings.CutPrefix(s.Text(), "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&syscall.O_APPEND != 0
		}
	}
	return false
}
