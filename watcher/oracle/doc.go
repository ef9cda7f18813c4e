// Package oracle checks a cvmwatch event stream against the guarantees of
// the design: it is the judge of the fault and chaos suites, and of
// `cvmwatch verify` on a user's stream.
//
// Without ground truth, Check verifies what the stream alone can prove: every
// message is a well-formed event stored on its own subject with its id as
// Nats-Msg-Id, no id is stored twice or with two contents, ids are the
// deterministic EventID of their transition, and each instance's events form
// a chain (sequence 1, 2, 3, ... and each From equal to the previous To, the
// first From being ABSENT or the baseline state).
//
// With ground truth (the simulator's History), Check also verifies that every
// event is justified: its From -> To is a step of the true history with
// intermediate states possibly skipped (the instance's events are a
// subsequence of the truth) and its [PreviousObservedAt, ObservedAt] window
// contains the true change. With Options.End set (the fleet has been quiet
// and the watcher caught up), it verifies that nothing was lost: each
// instance's last event ends in its final true state (ABSENT once released),
// and every state held longer than Options.MustSee appears in the chain.
//
// Check is pure: messages and truth in, a report out. The oracle imports no
// NATS code; publisher.ReadStream reads a JetStream stream into Messages.
package oracle
