package publisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Replica counts of the streams and buckets cvmwatch creates.
const (
	// AutoReplicas (0) asks CreateReplicated to choose: 3 on a JetStream
	// cluster that can place 3, else 1.
	AutoReplicas = 0
	// MaxReplicas is JetStream's own limit.
	MaxReplicas = 5
	// clusterReplicas is what AutoReplicas asks of a cluster.
	clusterReplicas = 3
)

// The server's answers that mean "these replicas cannot be placed": no
// cluster at all, too few JetStream peers, or too few with room.
const (
	errCodeNoPeers               jetstream.ErrorCode = 10005 // no suitable peers for placement
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	errCodeReplicasNotSupported  jetstream.ErrorCode = 10074 // replicas > 1 not supported in non-clustered mode
)

// ReplicaChoice is the replica count a stream or bucket was created with,
// and why, for the start-up log.
type ReplicaChoice struct {
	Replicas int
	// Reason is "configured", or for AutoReplicas what the server said.
	Reason string
}

// CheckReplicas says why n is not a replica count cvmwatch accepts: one of
// 1..MaxReplicas, or AutoReplicas.
func CheckReplicas(n int) error {
	if n < AutoReplicas || n > MaxReplicas {
		return fmt.Errorf("replicas %d: want 1 to %d, or auto", n, MaxReplicas)
	}
	return nil
}

// CreateReplicated creates a stream or a bucket with create, which must
// create it with the replica count it is given and return the server's
// error as it is. Every stream and bucket cvmwatch creates goes through it,
// so that they all follow one rule. A set replicas is used as it is, and
// the server's refusal returned. AutoReplicas gives 3 on a JetStream cluster
// of at least 3 servers, else 1.
//
// Which signal says "a cluster of at least 3 JetStream servers": the
// connected server's INFO names its cluster (nats.Conn.ConnectedClusterName;
// empty on a standalone server, which is then given 1 without asking). Its
// connect_urls cannot count the JetStream peers: they list every routed
// server, JetStream or not, are empty under no_advertise, and nats.go does
// not expose them; $JS.API.INFO (AccountInfo) says nothing of the cluster.
// The one authority on JetStream peers is the meta leader's placement,
// which takes only JetStream servers that are up and have room: so on a
// cluster create is asked for 3, and if the server answers that it cannot
// place them (no suitable peers, insufficient resources), for 1. A cluster
// that has a node down when the stream is first created thus gets 1; the
// reason says so, and nats.replicas: 3 scales it up later.
func CreateReplicated(ctx context.Context, js jetstream.JetStream, replicas int, create func(ctx context.Context, replicas int) error) (ReplicaChoice, error) {
	if err := CheckReplicas(replicas); err != nil {
		return ReplicaChoice{}, err
	}
	if replicas != AutoReplicas {
		return ReplicaChoice{Replicas: replicas, Reason: "configured"}, create(ctx, replicas)
	}
	cluster := js.Conn().ConnectedClusterName()
	if cluster == "" {
		return ReplicaChoice{Replicas: 1, Reason: "auto: the server is not part of a cluster"}, create(ctx, 1)
	}
	err := create(ctx, clusterReplicas)
	if err == nil {
		return ReplicaChoice{Replicas: clusterReplicas, Reason: fmt.Sprintf("auto: cluster %s placed %d replicas", cluster, clusterReplicas)}, nil
	}
	if !cannotPlace(err) {
		return ReplicaChoice{}, err
	}
	why := fmt.Sprintf("auto: cluster %s cannot place %d replicas (%v): fewer than %d JetStream servers are up", cluster, clusterReplicas, err, clusterReplicas)
	return ReplicaChoice{Replicas: 1, Reason: why}, create(ctx, 1)
}

// cannotPlace reports whether err is the server's answer that the replicas
// asked for cannot be placed.
func cannotPlace(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case errCodeNoPeers, errCodeInsufficientResources, errCodeReplicasNotSupported:
		return true
	}
	return false
}
