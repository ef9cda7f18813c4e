package publishertest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Restartable ports lie below Linux's default ephemeral range
// (32768-60999): the kernel never hands them to a listener asking for port
// 0, which every other server in the tests does.
const (
	restartableLow  = 20000
	restartableHigh = 32000
)

// RestartablePort returns a loopback TCP port, free a moment ago, for a
// server that a test stops and starts again on the same port (a NATS
// outage). A port taken from the ephemeral range could meanwhile be given
// to any listener on port 0 in this or another test process; this one can
// be taken only by another caller of RestartablePort picking the same of
// 12,000 ports at random while it is down.
func RestartablePort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		port := restartableLow + rand.IntN(restartableHigh-restartableLow)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	tb.Fatal("no free port below the ephemeral range after 100 tries")
	return 0
}
