package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATS faults against a real nats-server process (natstest.Server: the
// pinned nats-server module, built by the test).

// TestFaultNATSStoppedLongerThanDuplicateWindow: NATS is down for longer
// than the stream's duplicate window (1 s here) while scanning goes on;
// restarted on the same store, it receives every event exactly once: the
// events acknowledged before the outage are not re-sent (dedup could no
// longer drop them), those committed during it drain in order.
func TestFaultNATSStoppedLongerThanDuplicateWindow(t *testing.T) {
	t.Parallel()
	r := newRig(t, 150, func(c *daemonConfig) { c.NATSExtra = "  duplicates: 1s\n" })
	r.start()
	r.waitBaseline()
	r.change(3)
	r.converge(30 * time.Second)

	r.nats.Stop()
	r.change(5) // three flip back, two more stop
	r.waitLog("relay: publish failed", 30*time.Second)
	time.Sleep(3 * time.Second) // an outage of several duplicate windows, by design
	r.change(1)
	r.nats.Start()
	rep := r.converge(60 * time.Second)
	if rep.Events != 9 {
		t.Fatalf("events = %d, want 9:\n%s", rep.Events, rep)
	}
	if err := r.d.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// TestFaultNATSKilledRepeatedlyMidPublish: nats-server is SIGKILLed again
// and again while the watcher publishes a burst (an announced baseline of
// 400 instances plus churn); every event ends up in the stream once, in
// order.
func TestFaultNATSKilledRepeatedlyMidPublish(t *testing.T) {
	t.Parallel()
	r := newRig(t, 400, func(c *daemonConfig) { c.Announce = true })
	ctx, stop := context.WithCancel(t.Context())
	ch := &churner{sim: r.sim, regions: []string{"ap-guangzhou"}, target: 400, rng: rand.New(rand.NewPCG(3, 4))}
	r.start()
	r.waitLog("msg=scan ", 30*time.Second)
	// Churn only once the watcher is scanning: a state that came and went
	// before its first scan cannot be in the stream.
	var wg sync.WaitGroup
	wg.Go(func() { ch.run(ctx, 40) })
	// Kill right after a scan commits, while its events are being relayed,
	// until a kill has cut a publish short (at most 20 times).
	kills := 0
	for ; kills < 20 && !strings.Contains(r.log.String(), "relay: publish failed"); kills++ {
		scans := strings.Count(r.log.String(), "msg=scan ")
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(r.log.String(), "msg=scan ") == scans && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		r.nats.Kill()
		r.nats.Start()
	}
	stop()
	wg.Wait()
	if !strings.Contains(r.log.String(), "relay: publish failed") {
		t.Fatalf("%d kills and none cut a publish short", kills)
	}
	rep := r.converge(90 * time.Second)
	if rep.Events < 400 {
		t.Fatalf("events = %d, want at least the 400 appearances:\n%s", rep.Events, rep)
	}
	t.Logf("%d kills of nats-server; %s", kills, rep.Summary())
}

// TestFaultNATSUnreachableAtStartup: the daemon starts while no NATS server
// listens. It does not wait for one: it serves its health and metrics
// endpoints, scans, and commits changes to its outbox; once NATS is up it
// sets the stream up and publishes everything.
func TestFaultNATSUnreachableAtStartup(t *testing.T) {
	t.Parallel()
	r := newRig(t, 100, nil)
	r.nats.Stop()
	r.start()
	r.waitLog("scanning anyway", 30*time.Second)
	r.waitBaseline() // the first complete scan, with no NATS
	m := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`).FindStringSubmatch(r.log.String())
	if m == nil {
		t.Fatalf("no http address in the log: %s", keepLog(r.log))
	}
	base := "http://" + m[1]
	if code := httpStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while NATS is down = %d, want 200", code)
	}

	r.change(4)
	depth := regexp.MustCompile(`(?m)^cvmwatch_outbox_depth\{[^}]*\} 4$`)
	for deadline := time.Now().Add(30 * time.Second); !depth.MatchString(httpBody(t, base+"/metrics")); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the 4 changes never reached the outbox while NATS was down; log: %s", keepLog(r.log))
		}
	}
	if r.d.exited() {
		t.Fatalf("the daemon exited while NATS was unreachable: %v\nlog: %s", r.d.err, keepLog(r.log))
	}

	r.nats.Start()
	if rep := r.converge(60 * time.Second); rep.Events != 4 {
		t.Fatalf("events = %d, want 4:\n%s", rep.Events, rep)
	}
	r.waitLog("nats stream ready", 10*time.Second)
}

// httpStatus and httpBody make one GET of a daemon endpoint.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b)
}

// TestFaultNATSAuthRejected: the server starts refusing the daemon's
// credentials. The daemon says so clearly (never echoing the password),
// keeps scanning into its outbox, and delivers everything once the
// credentials are accepted again.
func TestFaultNATSAuthRejected(t *testing.T) {
	t.Parallel()
	const password = "nats-pass-do-not-echo"
	r := newRig(t, 100, func(c *daemonConfig) {
		c.NATSExtra = "  user: cvmwatch\n  password: " + password + "\n"
	}, "--user", "cvmwatch", "--pass", password)
	r.start()
	r.waitBaseline()
	r.change(2)
	r.converge(30 * time.Second)

	// The server now wants another password.
	r.nats.Stop()
	good := r.nats.Flags()
	r.nats.SetFlags("--user", "cvmwatch", "--pass", "another-password")
	r.nats.Start()
	r.change(3)
	r.waitLog("uthorization", 30*time.Second)
	if r.d.exited() {
		t.Fatalf("the daemon exited on an auth error: %v\nlog: %s", r.d.err, keepLog(r.log))
	}

	// Credentials accepted again: the outbox drains.
	r.nats.Stop()
	r.nats.SetFlags(good...)
	r.nats.Start()
	if rep := r.converge(60 * time.Second); rep.Events != 5 {
		t.Fatalf("events = %d, want 5:\n%s", rep.Events, rep)
	}
	if strings.Contains(r.log.String(), password) {
		t.Fatal("the daemon's log contains the NATS password")
	}
}

// TestFaultSIGTERMWhileNATSDown: a graceful stop while NATS is unreachable
// exits 0 (nothing is lost: the outbox keeps the events), and the next run
// delivers them. Found by the chaos soak: the drain of a reconnecting
// connection used to fail the exit status.
func TestFaultSIGTERMWhileNATSDown(t *testing.T) {
	t.Parallel()
	r := newRig(t, 100, nil)
	r.start()
	r.waitBaseline()
	r.nats.Stop()
	r.change(2)
	r.waitLog("relay: publish failed", 30*time.Second)
	if err := r.d.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM with NATS down: %v\n%s", err, tail(r.log.String(), 10))
	}
	r.nats.Start()
	r.start()
	if rep := r.converge(30 * time.Second); rep.Events != 2 {
		t.Fatalf("events = %d, want 2:\n%s", rep.Events, rep)
	}
}
