// Package natstest runs nats-server as a separate process for tests that
// must kill it: SIGKILL mid-publish, a restart on the same store, a node of
// a cluster going away. The server is built from the nats-server/v2 module
// at the version go.mod pins (the one the product embeds), so these tests
// need nothing installed and test against the same server as the rest of
// the suite.
//
// For a server in the test process, use publisher's embedded server instead:
// it is quicker and needs no build.
package natstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// serverModule is the main package of the nats-server module; go.mod pins
// its version.
const serverModule = "github.com/nats-io/nats-server/v2"

// built is the binary of this test process, built at most once.
var built struct {
	sync.Once
	dir, path, version string
	err                error
}

// ServerBinary returns the path of a nats-server executable built from the
// version of the nats-server/v2 module that go.mod requires. The first call
// in a test binary builds it into a temporary directory (go build's cache
// makes the builds of later test binaries quick); later calls return the
// same path. A failed build fails tb: a test that needs the server never
// passes or skips without it. Call RemoveServerBinary from TestMain to
// remove the directory when the tests end.
func ServerBinary(tb testing.TB) string {
	tb.Helper()
	built.Do(build)
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.path
}

// ServerVersion returns the version the binary of ServerBinary reports,
// such as "v2.15.2", building it if need be.
func ServerVersion(tb testing.TB) string {
	tb.Helper()
	ServerBinary(tb)
	return built.version
}

// RemoveServerBinary removes the binary ServerBinary built, if any. It is
// meant for TestMain, after m.Run.
func RemoveServerBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

func build() {
	dir, err := os.MkdirTemp("", "natstest-")
	if err != nil {
		built.err = fmt.Errorf("nats-server build dir: %w", err)
		return
	}
	built.dir = dir
	path := filepath.Join(dir, "nats-server")
	// Run in the test's package directory, inside this module: the module's
	// go.mod and go.sum choose and verify the version.
	if out, err := exec.Command("go", "build", "-o", path, serverModule).CombinedOutput(); err != nil {
		built.err = fmt.Errorf("go build %s: %v\n%s", serverModule, err, out)
		return
	}
	out, err := exec.Command(path, "--version").CombinedOutput()
	version, ok := strings.CutPrefix(string(bytes.TrimSpace(out)), "nats-server: ")
	if err != nil || !ok {
		built.err = fmt.Errorf("%s --version: %v: %q", path, err, out)
		return
	}
	built.path, built.version = path, version
}
