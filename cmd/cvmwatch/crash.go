package main

import (
	"os"
	"syscall"
)

// crashEnv names the test-only environment variable that makes the daemon
// kill itself with SIGKILL at a crash point (watcher.Crash* names), so the
// fault suite can prove a crash at each step loses nothing. It is not a
// configuration key and is not documented for users.
const crashEnv = "CVMWATCH_TEST_CRASH_AT"

// crashHook returns the watcher's crash callback for the point named in the
// environment, or nil.
func crashHook(point string) func(string) {
	if point == "" {
		return nil
	}
	return func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not instant: never run past the point
		}
	}
}
