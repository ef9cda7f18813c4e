package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// verifyAttribution checks the operations, actors and follow-ups of the
// stream against the simulator's operations (see oracle.CheckAttribution).
func verifyAttribution(ctx context.Context, js jetstream.JetStream, f verifyFlags, stored []publisher.StoredMessage,
	truth []cvmsim.Change, opts oracle.Options) (*oracle.AttributionReport, error) {
	ops, err := cvmsim.FetchOperations(ctx, f.sim)
	if err != nil {
		return nil, err
	}
	prefix := f.nats.prefix
	if prefix == "" {
		prefix = publisher.DefaultPrefix
	}
	follow, err := publisher.ReadAll(ctx, js, f.stream, prefix+".attribution.>")
	if err != nil {
		return nil, explainStreamError(err, f.stream, f.nats.server)
	}
	r := oracle.CheckAttribution(oracleMessages(stored), oracleMessages(follow), truth, ops, opts)
	return &r, nil
}
