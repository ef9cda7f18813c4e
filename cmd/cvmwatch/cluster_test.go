package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// natsCluster is three nats-server processes (natstest, the pinned module)
// routed into one JetStream cluster.
type natsCluster struct {
	t     *testing.T
	nodes []*natstest.Server
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	routes := make([]string, 3)
	ports := make([]int, 3)
	for i := range ports {
		ports[i] = publishertest.RestartablePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
	}
	c := &natsCluster{t: t}
	name := fmt.Sprintf("cvmtest-%d", ports[0])
	for i := range ports {
		c.nodes = append(c.nodes, natstest.NewServer(t, natstest.Options{
			Name: fmt.Sprintf("%s-n%d", name, i+1),
			Flags: []string{"--cluster_name", name, "--cluster", routes[i],
				"--routes", strings.Join(routes, ",")},
		}))
	}
	for _, n := range c.nodes {
		n.Start()
	}
	return c
}

// urls are the client URLs of the nodes, comma-separated, as nats.url and
// --server take them.
func (c *natsCluster) urls() string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.URL())
	}
	return strings.Join(out, ",")
}

// node returns the node named name.
func (c *natsCluster) node(name string) *natstest.Server {
	c.t.Helper()
	i := slices.IndexFunc(c.nodes, func(n *natstest.Server) bool { return n.Name() == name })
	if i < 0 {
		c.t.Fatalf("no node named %q", name)
	}
	return c.nodes[i]
}

// clusterWait polls cond, each try bounded by a short timeout (until a meta
// leader is elected JetStream calls time out rather than fail), until it
// returns nil or within passes.
func clusterWait(t *testing.T, within time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamLeader is the name of the server that leads the stream.
func streamLeader(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	var leader string
	clusterWait(t, 10*time.Second, "leader of "+name, func(ctx context.Context) error {
		info, err := streamInfo(ctx, js, name)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("no leader yet")
		}
		leader = info.Cluster.Leader
		return nil
	})
	return leader
}

// testSlog logs text to w.
func testSlog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// streamInfo is the stream's info, fresh from the server.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// On a cluster of three, the stream gets three replicas by default: when
// the node holding its leader is SIGKILLed, publishing resumes and history
// reads every event. An R1 stream, the old default, is unreadable while its
// one node is down. A configured count scales a stream up, never down.
func TestClusterStreamSurvivesItsLeaderNode(t *testing.T) {
	c := startNATSCluster(t)
	var logs syncBuffer
	nc, err := publisher.Connect(publisher.ConnConfig{URLs: splitURLs(c.urls()), ReconnectWait: 50 * time.Millisecond}, testSlog(&logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	clusterWait(t, 30*time.Second, "JetStream meta leader", func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	})
	ensure := func(cfg publisher.StreamConfig) {
		t.Helper()
		cfg.Logger = testSlog(&logs)
		clusterWait(t, 20*time.Second, "stream "+cfg.Name, func(ctx context.Context) error {
			_, err := publisher.EnsureStream(ctx, js, cfg)
			return err
		})
	}
	replicas := func(name string) int {
		t.Helper()
		var n int
		clusterWait(t, 10*time.Second, "info of "+name, func(ctx context.Context) error {
			info, err := streamInfo(ctx, js, name)
			if err == nil {
				n = info.Config.Replicas
			}
			return err
		})
		return n
	}

	ensure(publisher.StreamConfig{}) // auto
	if got, want := replicas("CVMWATCH"), 3; got != want {
		t.Fatalf("replicas by default on a cluster of 3 = %d, want %d\n%s", got, want, logs.String())
	}
	if !strings.Contains(logs.String(), "placed 3 replicas") {
		t.Errorf("the start-up log does not say why 3 replicas:\n%s", logs.String())
	}
	ensure(publisher.StreamConfig{Name: "ONE", Prefix: "one", Replicas: 1})

	pub, err := publisher.NewJetStream(js, publisher.JetStreamConfig{AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	one, err := publisher.NewJetStream(js, publisher.JetStreamConfig{Prefix: "one", AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const id = "ins-cluster01"
	at := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	states := []watcher.State{watcher.Absent, "PENDING", "RUNNING", "STOPPED", "RUNNING", "STOPPED", "RUNNING"}
	var events []watcher.Event
	for i := 1; i < len(states); i++ {
		events = append(events, cliEvent("prod", "ap-guangzhou", id, uint64(i), states[i-1], states[i], at.Add(time.Duration(i)*time.Minute)))
	}
	publish := func(p *publisher.JetStream, e watcher.Event) error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := p.Publish(ctx, []watcher.Event{e})
		return err
	}
	for _, e := range events[:3] {
		if err := publish(pub, e); err != nil {
			t.Fatal(err)
		}
		if err := publish(one, e); err != nil {
			t.Fatal(err)
		}
	}

	// SIGKILL the node that leads the replicated stream.
	leader := streamLeader(t, js, "CVMWATCH")
	killed := c.node(leader)
	killed.Kill()
	start := time.Now()
	clusterWait(t, 30*time.Second, "publishing after the leader's node died", func(context.Context) error {
		return publish(pub, events[3])
	})
	t.Logf("publishing resumed %s after SIGKILL of %s", time.Since(start).Round(100*time.Millisecond), leader)
	for _, e := range events[4:] {
		if err := publish(pub, e); err != nil {
			t.Fatal(err)
		}
	}
	// history reads right after the election: ReadAll's fetches are
	// bounded, and each starts a fresh consumer, so a consumer left on the
	// dead node costs one fetch wait, not the command's deadline.
	var survivors []string
	for _, n := range c.nodes {
		if n != killed {
			survivors = append(survivors, n.URL())
		}
	}
	code, stdout, stderr := runCLI(t, "history", "--server", strings.Join(survivors, ","), id)
	if got, want := len(cliLines(stdout)), len(events); code != 0 || got != want {
		t.Fatalf("history with the leader's node down: exit %d, %d lines, want 0 and %d\n%s\n%s", code, got, want, stdout, stderr)
	}
	killed.Start()

	// The R1 stream: unreadable while the node that holds it is down.
	holder := streamLeader(t, js, "ONE")
	c.node(holder).Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	msgs, err := publisher.ReadAll(ctx, js, "ONE", publisher.InstanceFilter("one", id))
	cancel()
	if err == nil {
		t.Fatalf("read %d events of the R1 stream with its only node down, want an error", len(msgs))
	}
	if err := publish(one, events[3]); err == nil {
		t.Fatal("published to the R1 stream with its only node down")
	}
	c.node(holder).Start()
	clusterWait(t, 30*time.Second, "the R1 stream back with its node", func(ctx context.Context) error {
		msgs, err := publisher.ReadAll(ctx, js, "ONE", publisher.InstanceFilter("one", id))
		if err == nil && len(msgs) != 3 {
			err = fmt.Errorf("%d events, want 3", len(msgs))
		}
		return err
	})

	// A configured count scales up; fewer than the stream has is a warning.
	ensure(publisher.StreamConfig{Name: "ONE", Prefix: "one", Replicas: 3})
	if got, want := replicas("ONE"), 3; got != want {
		t.Fatalf("replicas after asking for 3 = %d, want %d\n%s", got, want, logs.String())
	}
	ensure(publisher.StreamConfig{Name: "ONE", Prefix: "one", Replicas: 1})
	if got, want := replicas("ONE"), 3; got != want {
		t.Fatalf("replicas after asking for 1 = %d, want %d (never scaled down)", got, want)
	}
	if !strings.Contains(logs.String(), "not scaling it down") || !strings.Contains(logs.String(), "nats stream edit ONE --replicas 1") {
		t.Errorf("no warning saying how to scale down:\n%s", logs.String())
	}
}
