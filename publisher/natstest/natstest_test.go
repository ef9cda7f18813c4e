package natstest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/natstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	natstest.RemoveServerBinary()
	os.Exit(code)
}

// The server the tests kill is the one go.mod pins, the one the product
// embeds.
func TestServerBinaryIsThePinnedVersion(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	if got, want := natstest.ServerVersion(t), strings.TrimSpace(string(out)); got != want {
		t.Fatalf("nats-server --version = %q, want go.mod's %q", got, want)
	}
}

// A SIGKILLed server is gone, and started again it serves the streams of
// its store on the same URL.
func TestServerKeepsItsStreamsAcrossSIGKILL(t *testing.T) {
	s := natstest.StartServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js := connect(t, s.URL())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "kept.one", []byte("1")); err != nil {
		t.Fatal(err)
	}

	s.Kill()
	if nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("connected to a killed server")
	}
	s.Start()
	js = connect(t, s.URL())
	st, err := js.Stream(ctx, "KEPT")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.CachedInfo().State.Msgs, uint64(1); got != want {
		t.Fatalf("messages after SIGKILL and start = %d, want %d", got, want)
	}
}

// Flags apply from the next start; AuthOption carries the --user and
// --pass they set.
func TestServerFlagsApplyFromTheNextStart(t *testing.T) {
	s := natstest.StartServer(t, "--user", "u", "--pass", "p1")
	if nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("connected without credentials to a server that requires them")
	}
	old := s.AuthOption()
	s.Stop()
	s.SetFlags("--user", "u", "--pass", "p2")
	s.Start()
	if nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second), old); err == nil {
		nc.Close()
		t.Fatal("the old password is still accepted")
	}
	nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second), s.AuthOption())
	if err != nil {
		t.Fatalf("connect with the new password: %v", err)
	}
	nc.Close()
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A cluster of three elects a meta leader, keeps an R3 stream through the
// loss of a node, and the node started again rejoins.
func TestClusterServesAnR3StreamThroughANodeLoss(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	js := connect(t, c.URLs())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "r3.one", []byte("1")); err != nil {
		t.Fatal(err)
	}
	c.Nodes[0].Kill()
	var err error
	for range 100 {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err = js.Publish(pctx, "r3.two", []byte("2"))
		pcancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("publish with one node of three down: %v", err)
	}
	c.Nodes[0].Start()
	c.WaitReady(t)
	st, err := js.Stream(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.CachedInfo().State.Msgs, uint64(2); got != want {
		t.Fatalf("messages = %d, want %d", got, want)
	}
}
