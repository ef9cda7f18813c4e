package natstest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
)

// Cluster is a JetStream cluster of nats-server processes on loopback: each
// node has its own store, a fixed client port and a fixed cluster port
// below the ephemeral range, and routes to every other node, so a node
// killed and started again rejoins with its store. Nodes are stopped when
// the test ends.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts an n-node cluster and returns once it has a
// JetStream meta leader (API calls before that time out instead of
// failing), failing tb after 60 s. A node's fixed ports are picked free but
// may be taken by another test process before the node binds them; the
// cluster then starts again, up to three times, on other ports.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		c, err := startCluster(tb, n)
		if err == nil {
			c.WaitReady(tb)
			return c
		}
		if attempt == 3 {
			tb.Fatalf("start a %d-node cluster, 3 attempts: %v", n, err)
		}
		tb.Logf("start a %d-node cluster, attempt %d: %v; again on other ports", n, attempt, err)
	}
}

// startCluster starts n nodes on newly picked ports; after a node fails to
// start it stops the others and returns the error.
func startCluster(tb testing.TB, n int) (*Cluster, error) {
	name := fmt.Sprintf("natstest-%d-%d", os.Getpid(), serverIDs.Add(1))
	routePorts := make([]int, n)
	routes := make([]string, n)
	for i := range routePorts {
		routePorts[i] = publishertest.RestartablePort(tb)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
	}
	c := &Cluster{}
	for i := range n {
		others := append(append([]string{}, routes[:i]...), routes[i+1:]...)
		c.Nodes = append(c.Nodes, NewServer(tb, Options{
			Name: fmt.Sprintf("%s-n%d", name, i),
			Port: publishertest.RestartablePort(tb),
			Flags: []string{"--cluster_name", name, "--cluster", routes[i],
				"--routes", strings.Join(others, ",")},
		}))
	}
	for _, s := range c.Nodes {
		if err := s.tryStart(); err != nil {
			for _, started := range c.Nodes {
				started.Stop()
			}
			return nil, err
		}
	}
	return c, nil
}

// URLs returns every node's client URL joined by commas, as nats.Connect
// takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// WaitReady waits until the cluster answers a JetStream API call (a meta
// leader is elected), failing tb after 60 s.
func (c *Cluster) WaitReady(tb testing.TB) {
	tb.Helper()
	nc, err := nats.Connect(c.URLs(), nats.Timeout(time.Second), nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatalf("connect to cluster: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := js.AccountInfo(ctx)
		cancel()
		if err == nil && info != nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cluster has no JetStream meta leader after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
