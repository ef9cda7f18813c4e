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
// package's output only under -v, so after a passing run it also appends
// the line to the go command's own standard output, beside its "ok" lines
// (where that is a terminal, a pipe or a file opened for appending).
func reportSkips(code int) {
	line := skipSummary()
	fmt.Println(line)
	if code != 0 || testing.Verbose() {
		return // the go command prints this process's output
	}
	if f := goCommandStdout(); f != nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// goCommandStdout opens the standard output of the go command that runs
// this test binary, or returns nil: when the parent is not the go command,
// when its output is already ours (go test in a package directory streams
// it), and when appending could be overwritten (a regular file the go
// command writes at its own offset).
func goCommandStdout() *os.File {
	ppid := os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || filepath.Base(exe) != "go" {
		return nil
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/1", ppid), os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	theirs, err1 := f.Stat()
	ours, err2 := os.Stdout.Stat()
	switch {
	case err1 != nil || err2 != nil, os.SameFile(theirs, ours):
	case theirs.Mode().IsRegular() && !appends(ppid, 1):
	default:
		return f
	}
	f.Close()
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
