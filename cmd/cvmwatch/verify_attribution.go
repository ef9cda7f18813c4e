package main

import (
	"context"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// verifyAttribution checks the operations, actors and follow-ups of the
// stream (stored: its state messages and operation events) against the
// simulator's operations (see oracle.CheckAttribution).
func verifyAttribution(ctx context.Context, js jetstream.JetStream, f verifyFlags, stored []publisher.StoredMessage,
	truth []cvmsim.Change, ops []cvmsim.Operation, opts oracle.Options) (*oracle.AttributionReport, error) {
	follow, err := publisher.ReadAll(ctx, js, f.stream, verifyPrefix(f)+".attribution.>")
	if err != nil {
		return nil, explainStreamError(err, f.stream, f.nats.server)
	}
	r := oracle.CheckAttribution(oracleMessages(stored), oracleMessages(follow), truth, ops, opts)
	return &r, nil
}

// operated is what verifyOperations read and judged.
type operated struct {
	messages []publisher.StoredMessage
	report   *oracle.OperationReport
}

// verifyOperations checks the operation events of the stream
// (<prefix>.operation.>) against its state messages and, with ops (from
// --sim), the simulator's operations (see oracle.CheckOperations).
func verifyOperations(ctx context.Context, js jetstream.JetStream, f verifyFlags, stored []publisher.StoredMessage,
	ops []cvmsim.Operation, opts oracle.Options) (operated, error) {
	filter := verifyPrefix(f) + ".operation.>"
	c, err := publisher.DescribeStream(ctx, js, f.stream, verifyPrefix(f))
	if err != nil {
		return operated{}, explainStreamError(err, f.stream, f.nats.server)
	}
	var msgs []publisher.StoredMessage
	if slices.ContainsFunc(c.Subjects, func(s string) bool { return captures(s, filter) }) {
		// (A stream laid out before operation events has none to read.)
		if msgs, err = publisher.ReadAll(ctx, js, f.stream, filter); err != nil {
			return operated{}, explainStreamError(err, f.stream, f.nats.server)
		}
	}
	r := oracle.CheckOperations(oracleMessages(msgs), oracleMessages(stored), ops, opts)
	return operated{messages: msgs, report: &r}, nil
}

// verifyPrefix is the subject prefix verify reads under.
func verifyPrefix(f verifyFlags) string {
	if f.nats.prefix == "" {
		return publisher.DefaultPrefix
	}
	return f.nats.prefix
}

// captures reports whether a stream capturing subject holds every message
// of filter (a filter ending in ">").
func captures(subject, filter string) bool {
	st, ft := strings.Split(subject, "."), strings.Split(filter, ".")
	for i, tok := range st {
		switch {
		case tok == ">":
			return true
		case i >= len(ft) || ft[i] == ">" || tok != "*" && tok != ft[i]:
			return false
		}
	}
	return false
}
